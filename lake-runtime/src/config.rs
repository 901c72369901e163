//! Where the lake and the landing zone are, and how a job learns it.
//!
//! Every key is read, in this order of precedence, from
//! 1. a command-line flag (`--lake`, `--landing`),
//! 2. an environment variable (`LAKE_ROOT`, `LAKE_LANDING`),
//! 3. the configuration file (`--config FILE`, `LAKE_CONFIG`, or `./lake.toml` when it exists),
//! 4. the embedded default: a local lake in `./lake` over the sample landing data in `./landing`.
//!
//! `lake.toml` keys (all optional):
//!
//! ```toml
//! lake = "s3://my-bucket/lake"        # lake root: local path, file:///…, or s3://bucket/prefix
//! landing = "s3://my-bucket/landing"  # landing root: one folder per source (lastfm/, …)
//! s3_max_retries = 5                  # retries of a failed S3 request (backoff between them)
//! s3_retry_timeout_secs = 60          # give up retrying a request after this long
//! s3_request_timeout_secs = 30        # one S3 request (or a pause in its body) may take this long
//! memory_limit = "4GiB"               # query memory (default 1GiB; "none": unbounded); beyond
//!                                     # it sorts, aggregations and joins spill to local disk
//! parquet_compression = "zstd(1)"     # codec of the Parquet files the jobs write
//! parquet_row_group_rows = 122880     # rows per Parquet row group
//! lease_ttl_secs = 90                 # a run's lease expires this long after its last renewal
//! ```
//!
//! S3 credentials and region come from the AWS SDK's standard chain (environment, profile,
//! SSO, web identity, instance role); `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP=true` point the
//! jobs at an S3-compatible store such as LocalStack or MinIO.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parquet::basic::Compression;
use serde::Deserialize;
use url::Url;

use crate::env;
use crate::error::{LakeError, Result};

pub const DEFAULT_LAKE: &str = "./lake";
pub const DEFAULT_LANDING: &str = "./landing";
pub const DEFAULT_CONFIG_FILE: &str = "lake.toml";
pub const DEFAULT_S3_MAX_RETRIES: usize = 5;
pub const DEFAULT_S3_RETRY_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_S3_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Every Delta reader reads Snappy; `zstd(1)` writes a third fewer bytes at about the same
/// speed (measured in the README's Performance section).
pub const DEFAULT_PARQUET_COMPRESSION: &str = "snappy";
/// Rows per row group: DuckDB's size, large enough for compression and pruning.
pub const DEFAULT_PARQUET_ROW_GROUP_ROWS: usize = 122_880;
/// The queries' working memory (sorts, aggregations, joins, partitioned writes) before they
/// spill: with it every job stayed within 0.84 GiB at the Last.fm 1K scale and 1.02 GiB on
/// 2,400 month partitions (README, Performance).
pub const DEFAULT_MEMORY_LIMIT: &str = "1GiB";
/// A killed run's lease on another machine is taken over this long after its last renewal; a
/// run whose lease could not be renewed for five sixths of it stops before its next commit.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 90;
/// Shorter leases would be renewed (every third of the TTL) faster than a store answers.
pub const MIN_LEASE_TTL_SECS: u64 = 3;

/// Flags shared by every job. Flatten into a job's clap parser.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LakeArgs {
    /// Lake root: a local path, file:///…, or s3://bucket/prefix [default: ./lake]
    #[arg(long, env = env::LAKE_ROOT, value_name = "URI")]
    pub lake: Option<String>,

    /// Landing root, one folder per source (lastfm/, …) [default: ./landing]
    #[arg(long, env = env::LAKE_LANDING, value_name = "URI")]
    pub landing: Option<String>,

    /// Configuration file [default: ./lake.toml when it exists]
    #[arg(long, env = env::LAKE_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stderr: human-readable text, or JSON lines for log shippers [default: text]
    #[arg(long, env = env::LAKE_LOG_FORMAT, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Memory the queries may use (e.g. 2GiB, 512MiB); beyond it, sorts, joins and aggregations
    /// spill to local disk [default: no limit]
    #[arg(long, env = env::LAKE_MEMORY_LIMIT, value_name = "SIZE")]
    pub memory_limit: Option<String>,

    /// Fail the run (exit 3) when more than this share of the rows read was quarantined,
    /// e.g. 0.01 for 1%; the tables are still written, so the rows can be inspected
    #[arg(long, env = env::LAKE_MAX_QUARANTINE_RATIO, value_name = "RATIO", value_parser = ratio)]
    pub max_quarantine_ratio: Option<f64>,
}

fn ratio(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("'{s}' is not a ratio between 0 and 1")),
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The contents of `lake.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub lake: Option<String>,
    pub landing: Option<String>,
    pub s3_max_retries: Option<usize>,
    pub s3_retry_timeout_secs: Option<u64>,
    pub s3_request_timeout_secs: Option<u64>,
    pub memory_limit: Option<String>,
    pub parquet_compression: Option<String>,
    pub parquet_row_group_rows: Option<usize>,
    pub lease_ttl_secs: Option<u64>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| LakeError::Config {
            message: format!("cannot read configuration file {}: {e}", path.display()),
        })?;
        toml::from_str(&text).map_err(|e| LakeError::Config {
            message: format!(
                "configuration file {} is not valid: {}",
                path.display(),
                e.to_string().trim_end()
            ),
        })
    }
}

/// Resolved configuration of a run.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// Lake root, always ending in `/`.
    pub lake: Url,
    /// Landing root, always ending in `/`.
    pub landing: Url,
    pub log_format: LogFormat,
    pub max_quarantine_ratio: Option<f64>,
    pub s3_max_retries: usize,
    pub s3_retry_timeout_secs: u64,
    pub s3_request_timeout_secs: u64,
    /// Bytes of memory the queries may use before they spill; `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Codec of the Parquet files the jobs write.
    pub parquet_compression: Compression,
    /// Rows per row group of the Parquet files the jobs write.
    pub parquet_row_group_rows: usize,
    /// How long a run's lease lives without a renewal.
    pub lease_ttl: std::time::Duration,
    /// Where each key's value came from (`flag or environment`, the file's name, `default`),
    /// for the run record.
    pub origin: BTreeMap<&'static str, String>,
}

/// Picks each key's value by precedence and notes where it came from.
struct Origins {
    file: String,
    of: BTreeMap<&'static str, String>,
}

impl Origins {
    /// The flag's (or environment's) value, else the file's, else `default`. clap has already
    /// applied flag over environment.
    fn pick<T>(&mut self, key: &'static str, flag: Option<T>, file: Option<T>, default: T) -> T {
        let (value, from) = match (flag, file) {
            (Some(v), _) => (v, "flag or environment".to_string()),
            (None, Some(v)) => (v, self.file.clone()),
            (None, None) => (default, "default".to_string()),
        };
        self.of.insert(key, from);
        value
    }
}

impl LakeConfig {
    pub fn resolve(args: &LakeArgs) -> Result<Self> {
        let (path, config_from) = match &args.config {
            Some(path) => (Some(path.clone()), "flag or environment"),
            None => {
                let path = PathBuf::from(DEFAULT_CONFIG_FILE);
                if path.is_file() {
                    (Some(path), "default")
                } else {
                    (None, "none")
                }
            }
        };
        let file = path.as_deref().map(ConfigFile::read).transpose()?;
        let mut o = Origins {
            file: path.map(|p| p.display().to_string()).unwrap_or_default(),
            of: BTreeMap::from([("config", config_from.to_string())]),
        };
        let file = file.unwrap_or_default();
        let lake = o.pick("lake", args.lake.clone(), file.lake, DEFAULT_LAKE.into());
        let landing = o.pick(
            "landing",
            args.landing.clone(),
            file.landing,
            DEFAULT_LANDING.into(),
        );
        let log_format = o.pick("log_format", args.log_format, None, LogFormat::Text);
        let max_quarantine_ratio = o.pick(
            "max_quarantine_ratio",
            args.max_quarantine_ratio.map(Some),
            None,
            None,
        );
        let memory = o.pick(
            "memory_limit",
            args.memory_limit.clone(),
            file.memory_limit,
            DEFAULT_MEMORY_LIMIT.into(),
        );
        let codec = o.pick(
            "parquet_compression",
            None,
            file.parquet_compression,
            DEFAULT_PARQUET_COMPRESSION.into(),
        );
        let row_group_rows = o.pick(
            "parquet_row_group_rows",
            None,
            file.parquet_row_group_rows,
            DEFAULT_PARQUET_ROW_GROUP_ROWS,
        );
        Ok(Self {
            lake: parse_location("lake", &lake)?,
            landing: parse_location("landing", &landing)?,
            log_format,
            max_quarantine_ratio,
            s3_max_retries: o.pick(
                "s3_max_retries",
                None,
                file.s3_max_retries,
                DEFAULT_S3_MAX_RETRIES,
            ),
            s3_retry_timeout_secs: o.pick(
                "s3_retry_timeout_secs",
                None,
                file.s3_retry_timeout_secs,
                DEFAULT_S3_RETRY_TIMEOUT_SECS,
            ),
            s3_request_timeout_secs: o.pick(
                "s3_request_timeout_secs",
                None,
                file.s3_request_timeout_secs,
                DEFAULT_S3_REQUEST_TIMEOUT_SECS,
            ),
            memory_limit: memory_limit(&memory)?,
            parquet_compression: compression(&codec)?,
            parquet_row_group_rows: row_groups(row_group_rows)?,
            lease_ttl: lease_ttl(o.pick(
                "lease_ttl_secs",
                None,
                file.lease_ttl_secs,
                DEFAULT_LEASE_TTL_SECS,
            ))?,
            origin: o.of,
        })
    }
}

fn memory_limit(text: &str) -> Result<Option<usize>> {
    match text.trim() {
        "none" => Ok(None),
        text => parse_size(text).map(Some).ok_or_else(|| LakeError::Config {
            message: format!(
                "memory_limit '{text}' is not a size: write it like 2GiB, 512MiB or 1000000 (or none)"
            ),
        }),
    }
}

fn compression(codec: &str) -> Result<Compression> {
    codec.trim().parse().map_err(|_| LakeError::Config {
        message: format!(
            "parquet_compression '{codec}' is not a Parquet codec: use snappy, lz4_raw, \
             zstd(1) to zstd(22), gzip(0) to gzip(9), brotli(0) to brotli(11) or uncompressed"
        ),
    })
}

fn lease_ttl(secs: u64) -> Result<std::time::Duration> {
    if secs < MIN_LEASE_TTL_SECS {
        return Err(LakeError::Config {
            message: format!(
                "lease_ttl_secs is {secs}: a lease lives at least {MIN_LEASE_TTL_SECS} s (it is \
                 renewed every third of it)"
            ),
        });
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn row_groups(rows: usize) -> Result<usize> {
    if rows == 0 {
        return Err(LakeError::Config {
            message: "parquet_row_group_rows is 0: a row group holds at least one row".into(),
        });
    }
    Ok(rows)
}

/// A size in bytes: `1000000`, `512MiB`, `2GiB`, `2G` (powers of 1024 either way).
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes >= 1.0 && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// Turns `s3://bucket/prefix`, `file:///abs/path` or a plain (relative or absolute) path into a
/// directory URL ending in `/`.
pub fn parse_location(key: &str, value: &str) -> Result<Url> {
    let bad = |why: String| LakeError::Config {
        message: format!("{key} location '{value}' is not usable: {why}"),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let mut url = if value.contains("://") {
        let url = Url::parse(value).map_err(|e| bad(e.to_string()))?;
        match url.scheme() {
            "s3" | "s3a" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad("no bucket name (expected s3://bucket/prefix)".into()));
                }
                // one scheme inside the lake
                let rest = &value[value.find("://").map_or(0, |i| i + 3)..];
                Url::parse(&format!("s3://{rest}")).map_err(|e| bad(e.to_string()))?
            }
            "file" => url,
            other => {
                return Err(bad(format!(
                    "scheme '{other}' is not supported (use a local path, file:// or s3://)"
                )));
            }
        }
    } else {
        let path = std::path::absolute(value).map_err(|e| bad(e.to_string()))?;
        Url::from_directory_path(normalize(&path))
            .map_err(|()| bad("not an absolute path".into()))?
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `/a/b/../c/./d` → `/a/c/d`, without touching the file system (object stores reject `..`).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn sizes_read_with_binary_units_and_nonsense_is_refused() {
        assert_eq!(parse_size("1000000"), Some(1_000_000));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("1.5 GiB"), Some(3 << 29));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("2 TB"), None);
        assert_eq!(parse_size("0"), None);
    }

    use super::*;

    #[test]
    fn plain_relative_path_becomes_an_absolute_directory_url() {
        let url = parse_location("lake", "./lake").map(|u| u.to_string());
        let cwd = std::env::current_dir().map(|d| d.display().to_string());
        assert_eq!(url.ok(), cwd.ok().map(|d| format!("file://{d}/lake/")));
    }

    #[test]
    fn dot_dot_in_a_local_path_is_resolved() {
        let url = parse_location("landing", "/data/jobs/../landing/./x").map(|u| u.to_string());
        assert_eq!(url.ok().as_deref(), Some("file:///data/landing/x/"));
    }

    #[test]
    fn s3_urls_keep_bucket_and_prefix_and_gain_a_trailing_slash() {
        let url = parse_location("lake", "s3://bucket/some/prefix").map(|u| u.to_string());
        assert_eq!(url.ok().as_deref(), Some("s3://bucket/some/prefix/"));
        let url = parse_location("lake", "s3a://bucket").map(|u| u.to_string());
        assert_eq!(url.ok().as_deref(), Some("s3://bucket/"));
    }

    #[test]
    fn unsupported_schemes_and_missing_buckets_are_config_errors() {
        for bad in ["gs://bucket/x", "s3:///nobucket", "http://host/x", "  "] {
            match parse_location("lake", bad) {
                Err(LakeError::Config { message }) => assert!(message.contains("lake location")),
                other => panic!("{bad}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("lake-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("lake.toml");
        std::fs::write(
            &file,
            "lake = \"s3://from-file/lake\"\nlanding = \"s3://from-file/landing\"\n",
        )
        .ok();
        let args = LakeArgs {
            lake: Some("s3://from-flag/lake".into()),
            config: Some(file.clone()),
            ..Default::default()
        };
        let cfg = LakeConfig::resolve(&args).map(|c| (c.lake.to_string(), c.landing.to_string()));
        assert_eq!(
            cfg.ok(),
            Some((
                "s3://from-flag/lake/".into(),
                "s3://from-file/landing/".into()
            ))
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn every_key_says_where_its_value_came_from() {
        let dir = std::env::temp_dir().join(format!("lake-config-origin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("lake.toml");
        std::fs::write(&file, "lake = \"/tmp/x\"\nparquet_row_group_rows = 100\n").ok();
        let args = LakeArgs {
            landing: Some("/tmp/landing".into()),
            config: Some(file.clone()),
            log_format: Some(LogFormat::Json),
            ..Default::default()
        };
        let origin = LakeConfig::resolve(&args).map(|c| c.origin);
        std::fs::remove_dir_all(&dir).ok();
        let name = file.display().to_string();
        let flag = "flag or environment";
        let want: BTreeMap<&str, &str> = BTreeMap::from([
            ("config", flag),
            ("lake", name.as_str()),
            ("landing", flag),
            ("lease_ttl_secs", "default"),
            ("log_format", flag),
            ("max_quarantine_ratio", "default"),
            ("memory_limit", "default"),
            ("parquet_compression", "default"),
            ("parquet_row_group_rows", name.as_str()),
            ("s3_max_retries", "default"),
            ("s3_request_timeout_secs", "default"),
            ("s3_retry_timeout_secs", "default"),
        ]);
        let got = origin.ok().unwrap_or_default();
        let got: BTreeMap<&str, &str> = got.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn queries_get_a_gibibyte_unless_told_otherwise_and_none_lifts_the_limit() {
        let limit = |flag: Option<&str>| {
            let args = LakeArgs {
                memory_limit: flag.map(String::from),
                ..Default::default()
            };
            LakeConfig::resolve(&args).map(|c| c.memory_limit).ok()
        };
        assert_eq!(limit(None), Some(Some(1 << 30)));
        assert_eq!(limit(Some("none")), Some(None));
        assert_eq!(limit(Some("256MiB")), Some(Some(256 << 20)));
        assert_eq!(limit(Some("")), None);
    }

    #[test]
    fn unknown_keys_in_the_file_are_reported() {
        let dir = std::env::temp_dir().join(format!("lake-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("lake.toml");
        std::fs::write(&file, "lake_root = \"./x\"\n").ok();
        let args = LakeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        match LakeConfig::resolve(&args) {
            Err(LakeError::Config { message }) => {
                assert!(message.contains("lake_root"), "{message}")
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
