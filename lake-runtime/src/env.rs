//! Every environment variable the jobs and the `lake` tool read, in one place.
//!
//! Flags win over these; these win over `lake.toml` (see [`crate::config`]). Variables of the
//! AWS SDK's own chain (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …) are
//! read by the SDK and object_store themselves and are not listed here, except where the jobs
//! read one too.

/// Lake root (`--lake`): a local path, `file:///…` or `s3://bucket/prefix`.
pub const LAKE_ROOT: &str = "LAKE_ROOT";
/// Landing root (`--landing`), one folder per source.
pub const LAKE_LANDING: &str = "LAKE_LANDING";
/// Configuration file (`--config`); `./lake.toml` is read when it exists and this is unset.
pub const LAKE_CONFIG: &str = "LAKE_CONFIG";
/// Log format on stderr (`--log-format`): `text` or `json`.
pub const LAKE_LOG_FORMAT: &str = "LAKE_LOG_FORMAT";
/// Log filter in `tracing` syntax, e.g. `debug` or `info,deltalake=debug`; default: our crates
/// at `info`, libraries at `warn`.
pub const LAKE_LOG: &str = "LAKE_LOG";
/// Query memory (`--memory-limit`), e.g. `2GiB` (default `1GiB`; `none` for no limit).
pub const LAKE_MEMORY_LIMIT: &str = "LAKE_MEMORY_LIMIT";
/// Share of rows read that may be quarantined before a run exits 3 (`--max-quarantine-ratio`).
pub const LAKE_MAX_QUARANTINE_RATIO: &str = "LAKE_MAX_QUARANTINE_RATIO";
/// `gold --scheduler` and `lake sql --scheduler`: the Ballista scheduler to run the SQL on.
pub const LAKE_SCHEDULER: &str = "LAKE_SCHEDULER";
/// A diagnostic: a table name, a comma-separated list of them, or `all`. The query that writes
/// each named table runs once more beforehand under EXPLAIN ANALYZE, and its plan is logged
/// with each operator's rows, time and memory.
pub const LAKE_EXPLAIN_ANALYZE: &str = "LAKE_EXPLAIN_ANALYZE";
/// A hook for tests only: the named point (`committed:<table>`, `committing:<table>`,
/// `bronze.reading`, `bronze.batch_taken`, `silver.pinned`) aborts the process there, as SIGKILL would;
/// `pause:<point>` stops it there until it gets SIGCONT (see [`crate::fault`]).
pub const LAKE_TEST_FAULT: &str = "LAKE_TEST_FAULT";
/// object_store's setting for an atomic create-if-absent on S3. When unset, the jobs use S3
/// conditional writes (`multipart`), which Delta commits need and AWS S3 supports; set it to
/// choose another mechanism for an S3-compatible store that lacks them.
pub const AWS_COPY_IF_NOT_EXISTS: &str = "AWS_COPY_IF_NOT_EXISTS";
/// The host a lease holder runs on (a pod's name under Kubernetes); `/etc/hostname` when unset.
/// A lease held by a process of this host that no longer exists is taken over at once.
pub const HOSTNAME: &str = "HOSTNAME";

/// This machine's (or pod's) name: `HOSTNAME`, else `/etc/hostname`; empty when neither says.
pub fn host_name() -> String {
    std::env::var(HOSTNAME)
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
