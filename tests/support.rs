//! Helpers for the end-to-end tests: running the job binaries as a user does, temporary lakes,
//! LocalStack buckets, and the optional inputs (real data, peer engines) that tests skip without;
//! and the randomized fault harness ([`harness`]).

pub mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The clone the tests run in. Read when the test runs (cargo sets it then too), not baked in
/// at build time: a build cache shared by clones at other paths may hand this clone a test
/// binary built in another.
pub fn repo() -> PathBuf {
    let tests = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    tests.join("..")
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// A job binary of the same build as this test (`cargo build --bins` puts them beside `deps/`,
/// where test binaries live, and beside the harness's own binary), or of the folder
/// `LAKE_TEST_BIN_DIR` names.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let here = exe.parent().expect("a binary lives in a folder");
    let built = if here.ends_with("deps") {
        here.parent().unwrap_or(here)
    } else {
        here
    };
    let dir =
        std::env::var_os("LAKE_TEST_BIN_DIR").map_or_else(|| built.to_path_buf(), PathBuf::from);
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the jobs first (`cargo build --workspace --bins`; `make test` does it)",
        path.display()
    );
    path
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lake-tests-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a job run left behind.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run record: the last stdout line, parsed.
    pub record: serde_json::Value,
}

impl Ran {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "job failed:\n{}", self.stderr);
        self
    }

    pub fn num(&self, key: &str) -> u64 {
        self.record[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {}", self.record))
    }

    pub fn detail(&self, key: &str) -> &serde_json::Value {
        &self.record["details"][key]
    }

    /// A detail bronze reports per source, e.g. `source_detail("lastfm", "nothing_new")`.
    pub fn source_detail(&self, source: &str, key: &str) -> &serde_json::Value {
        &self.record["details"][source][key]
    }

    /// How a silver table's counts reconciled (`details.<source>.reconciliation.<table>`).
    pub fn reconciled(&self, source: &str, table: &str) -> serde_json::Value {
        self.record["details"][source]["reconciliation"][table].clone()
    }

    /// Rows written to a table, from the run record's outputs.
    pub fn rows_written(&self, table: &str) -> u64 {
        self.record["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|w| w["table"] == table))
            .and_then(|w| w["rows"].as_u64())
            .unwrap_or_else(|| panic!("no output {table} in {}", self.record))
    }
}

/// Starts a job binary in `cwd` (so that no stray lake.toml applies), with a clean lake
/// environment plus `env`.
pub fn spawn(job: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(bin(job));
    cmd.args(args);
    as_a_user(&mut cmd, cwd, env);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("start job binary")
}

/// Sets `cmd` (a job, or a tool that starts one) to run in `cwd` with a clean lake environment
/// plus `env`, as [`spawn`] starts a job.
pub fn as_a_user(cmd: &mut Command, cwd: &Path, env: &[(&str, &str)]) {
    cmd.current_dir(cwd);
    for var in [
        "LAKE_ROOT",
        "LAKE_LANDING",
        "LAKE_CONFIG",
        "LAKE_LOG_FORMAT",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    // never let the AWS SDK look for an instance role
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.envs(env.iter().copied());
}

/// Waits for a started job and collects what it left behind.
pub fn finish(child: std::process::Child) -> Ran {
    let out = child.wait_with_output().expect("wait for job binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let record = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        record,
    }
}

/// Runs a job binary to its end (see [`spawn`]).
pub fn run(job: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    finish(spawn(job, cwd, args, env))
}

/// Runs bronze, silver and gold in order with the same arguments; all must succeed.
pub fn pipeline(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> [Ran; 3] {
    [
        run("bronze", cwd, args, env).ok(),
        run("silver", cwd, args, env).ok(),
        run("gold", cwd, args, env).ok(),
    ]
}

/// Whether the tests run under CI (`CI=true`), where every test must run.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A test cannot run for want of `what`: under CI that fails it; elsewhere it says why and
/// the test returns early (`None`).
pub fn unavailable<T>(what: &str) -> Option<T> {
    assert!(
        !under_ci(),
        "{what}; under CI (CI=true) every test must run: `make test` installs what the tests need"
    );
    eprintln!("SKIP: {what}");
    None
}

/// Real data from ../shared/data (or `LAKE_TEST_DATA`); `None` when absent (see
/// [`unavailable`]).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("LAKE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let path = base.join(rel);
    if path.exists() {
        return Some(path);
    }
    unavailable(&format!(
        "{} is absent (set LAKE_TEST_DATA to the shared data folder)",
        path.display()
    ))
}

/// The Python of the interop venv (`tests/interop/setup.sh`): the peer and interop engines,
/// and an outside Delta writer; `None` when it was not installed (see [`unavailable`]).
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("LAKE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => unavailable(
            "LAKE_TEST_PYTHON is not set (`make test` installs the engines with tests/interop/setup.sh)",
        ),
    }
}

/// Runs the interop venv's Python with `args` (and `env`); its stdout. Fails the test when it fails.
pub fn python_output(py: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = Command::new(py)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python {}: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `peers.py` of the shared benchmark folder, if present.
pub fn peers_py() -> Option<PathBuf> {
    shared_bench("peers.py")
}

/// A reference implementation of the shared benchmark folder (or `LAKE_TEST_BENCH`); `None`
/// when absent (see [`unavailable`]).
pub fn shared_bench(file: &str) -> Option<PathBuf> {
    let base = std::env::var_os("LAKE_TEST_BENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/bench"));
    let path = base.join(file);
    if path.is_file() {
        return Some(path);
    }
    unavailable(&format!(
        "{} is absent (set LAKE_TEST_BENCH)",
        path.display()
    ))
}

/// The project's own peers of `make bench`.
pub fn bench_peers_py() -> PathBuf {
    repo().join("bench/peers.py")
}

/// The answer of a peer engine of a `peers.py` on a plays file, as TSV text.
pub fn peer_answer(peers: &Path, engine: &str, plays: &Path) -> Option<String> {
    let py = python()?;
    let peers = peers.display().to_string();
    let plays = plays.display().to_string();
    let out = python_output(&py, &[&peers, engine, &plays], &[]);
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The charts `deezer.py duckdb` (the shared reference) writes for `date` (YYYYMMDD) from the
/// logs in `logs`: the country file's text, then the user file's; `None` when the reference or
/// its engine is missing (see [`unavailable`]).
pub fn deezer_py_charts(logs: &Path, date: &str) -> Option<(String, String)> {
    let (py, script) = (python()?, shared_bench("deezer.py")?);
    let out = TempDir::new("deezer-py");
    let (logs, dir) = (logs.display().to_string(), out.path().display().to_string());
    let args = [
        script.to_str().unwrap_or_default(),
        "duckdb",
        &logs,
        "--date",
        date,
        "--out",
        &dir,
    ];
    python_output(&py, &args, &[]);
    let read = |k: &str| {
        std::fs::read_to_string(out.join(&format!("{k}_top50_{date}.txt"))).expect("a chart file")
    };
    Some((read("country"), read("user")))
}

/// LocalStack S3, when the test run has it.
pub struct S3 {
    pub endpoint: String,
}

impl S3 {
    /// `None` (with a message) when LocalStack is not running, unless `LAKE_TEST_REQUIRE_S3`
    /// is set (as `make test` does), in which case a missing LocalStack fails the test.
    pub fn get() -> Option<S3> {
        let endpoint = std::env::var("LAKE_TEST_S3_ENDPOINT")
            .unwrap_or_else(|_| "http://127.0.0.1:4566".into());
        let healthy = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "3",
                &format!("{endpoint}/_localstack/health"),
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if healthy {
            return Some(S3 { endpoint });
        }
        assert!(
            std::env::var_os("LAKE_TEST_REQUIRE_S3").is_none(),
            "LocalStack is not answering at {endpoint}"
        );
        unavailable(&format!(
            "LocalStack is not running at {endpoint} (`make test` starts it)"
        ))
    }

    /// The environment a job needs to reach this S3.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A fresh bucket for one test.
    pub fn bucket(&self, tag: &str) -> Bucket {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("t-{tag}-{}-{n}", std::process::id());
        self.create_bucket(&name);
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&name)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .expect("S3 client");
        Bucket {
            name,
            store: Arc::new(store),
        }
    }

    /// Creates a bucket, retrying a busy LocalStack (a CI run once saw one PUT refused while
    /// a Ballista cluster was loading it); creating a bucket one already owns is a success
    /// in us-east-1, so a retry after a lost answer is harmless.
    fn create_bucket(&self, name: &str) {
        const ATTEMPTS: u64 = 5;
        let url = format!("{}/{name}", self.endpoint);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_secs(attempt));
            }
            let answer = Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "30",
                    "-w",
                    "%{http_code}",
                    "-o",
                    "/dev/null",
                ])
                .args(["-X", "PUT", &url])
                .output();
            match answer {
                Ok(o) if o.status.success() && o.stdout.starts_with(b"2") => return,
                Ok(o) => {
                    last = format!(
                        "curl exit {:?}, HTTP {}, {}",
                        o.status.code(),
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr).trim()
                    )
                }
                Err(e) => last = format!("curl could not run: {e}"),
            }
        }
        panic!("could not create bucket {name} at {url} in {ATTEMPTS} attempts: {last}");
    }
}

pub struct Bucket {
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
}

impl Bucket {
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(
            self.store
                .put(&ObjectPath::from(key), PutPayload::from(bytes)),
        )
        .expect("upload");
    }

    /// Every file under `dir`, at `prefix/<its path under dir>`.
    pub fn put_tree(&self, prefix: &str, dir: &Path) {
        for (rel, bytes) in files_under(dir) {
            self.put(&format!("{prefix}/{rel}"), bytes);
        }
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let got = self.store.get(&ObjectPath::from(key)).await?;
            got.bytes().await
        })
        .unwrap_or_else(|e| panic!("download {key}: {e}"))
        .to_vec()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// The rows of `sql` (one or more statements) over the lake, read the project's own way
/// (`lake sql --format json`), each as a JSON object.
pub fn lake_sql(lake: &str, sql: &str, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let ran = run(
        "lake",
        &std::env::temp_dir(),
        &["--lake", lake, "sql", sql, "--format", "json"],
        env,
    );
    assert_eq!(ran.code, 0, "lake sql {sql}: {}", ran.stderr);
    ran.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The values of the first column of `sql`'s rows, as text (see [`lake_sql`]).
pub fn lake_column(lake: &str, sql: &str) -> Vec<String> {
    lake_sql(lake, sql, &[])
        .iter()
        .filter_map(|row| row.as_object()?.values().next().cloned())
        .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
        .collect()
}

/// Every bronze, silver and gold table of the lake and `meta.landed_objects`, each as its rows
/// in JSON, sorted, without the columns in `drop` (run ids and times differ between runs).
/// Read with the `lake sql` tool.
pub fn snapshot(
    lake: &str,
    env: &[(&str, &str)],
    drop: &[&str],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let listed = lake_sql(
        lake,
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables \
         WHERE table_schema IN ('bronze', 'silver', 'gold', 'meta') AND table_name <> 'runs'",
        env,
    );
    let tables: Vec<String> = listed
        .iter()
        .filter_map(|v| v["t"].as_str().map(String::from))
        .collect();
    assert!(tables.len() > 20, "the catalogue's tables: {listed:?}");
    let all: Vec<String> = tables
        .iter()
        .map(|t| format!("SELECT '{t}' AS snapshot_table, * FROM {t}"))
        .collect();
    let mut out: std::collections::BTreeMap<String, Vec<String>> =
        tables.iter().map(|t| (t.clone(), Vec::new())).collect();
    for row in lake_sql(lake, &all.join(";\n"), env) {
        let serde_json::Value::Object(mut row) = row else {
            panic!("not a JSON row: {row}");
        };
        let table = row
            .remove("snapshot_table")
            .and_then(|t| t.as_str().map(String::from))
            .unwrap_or_default();
        for d in drop {
            row.remove(*d);
        }
        out.entry(table)
            .or_default()
            .push(serde_json::Value::Object(row).to_string());
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

/// Columns that differ between two runs over the same data.
pub const RUN_COLUMNS: &[&str] = &["run_id", "ingested_at", "quarantined_at", "landed_at"];

/// Asserts two snapshots hold the same tables with the same rows, naming the first difference.
pub fn assert_same_lake(
    got: &std::collections::BTreeMap<String, Vec<String>>,
    want: &std::collections::BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: tables"
    );
    for (table, rows) in want {
        let other = &got[table];
        if other != rows {
            let extra: Vec<&String> = other.iter().filter(|r| !rows.contains(r)).take(3).collect();
            let missing: Vec<&String> =
                rows.iter().filter(|r| !other.contains(r)).take(3).collect();
            panic!(
                "{what}: {table} has {} rows, a clean run {}; extra {extra:?}, missing {missing:?}",
                other.len(),
                rows.len()
            );
        }
    }
}

/// The hand-built Last.fm fixture and its plays and profiles files.
pub const PLAYS: &str = "userid-timestamp-artid-artname-traid-traname.tsv";
pub const PROFILES: &str = "userid-profile.tsv";

pub fn hand_landing() -> std::path::PathBuf {
    fixture("lastfm-hand")
}

pub fn hand_expected() -> String {
    std::fs::read_to_string(fixture("lastfm-hand/expected_top_songs.tsv")).expect("expected answer")
}

pub fn local_args(dir: &TempDir, landing: &Path) -> Vec<String> {
    vec![
        "--lake".into(),
        dir.join("lake").display().to_string(),
        "--landing".into(),
        landing.display().to_string(),
    ]
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// How a [`FaultProxy`] treats the connections it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Pass them on to the store.
    None = 0,
    /// Close them at once, as a stopped server does.
    Down = 1,
    /// Answer every request with 503 Service Unavailable.
    Unavailable = 2,
    /// Accept them and never answer.
    Hang = 3,
    /// Pass the requests on to the store, and lose its answers: the store does what it was
    /// asked, and the client hears nothing (then retries, or gives up).
    LoseAnswers = 4,
}

/// A TCP proxy on loopback in front of a real store (LocalStack), which a test switches
/// between passing traffic on and failing in the ways a store fails.
pub struct FaultProxy {
    pub endpoint: String,
    fault: Arc<std::sync::atomic::AtomicU8>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        use std::net::{TcpListener, TcpStream};
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let fault = Arc::new(std::sync::atomic::AtomicU8::new(Fault::None as u8));
        let mode = fault.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let mode = mode.clone();
                match mode.load(Ordering::SeqCst) {
                    4 => {
                        std::thread::spawn(move || {
                            let Ok(server) = TcpStream::connect(&upstream) else {
                                return;
                            };
                            let Ok(answers) = server.try_clone() else {
                                return;
                            };
                            let up = std::thread::spawn(move || pass(client, server, &mode, 4));
                            lose(answers);
                            let _ = up.join();
                        });
                    }
                    0 => {
                        std::thread::spawn(move || {
                            let Ok(server) = TcpStream::connect(&upstream) else {
                                return;
                            };
                            let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                                (Ok(c), Ok(s)) => (c, s),
                                _ => return,
                            };
                            let m = mode.clone();
                            let up = std::thread::spawn(move || pass(client, server, &m, 0));
                            pass(s2, c2, &mode, 0);
                            let _ = up.join();
                        });
                    }
                    2 => {
                        std::thread::spawn(move || {
                            use std::io::{Read, Write};
                            let mut client = client;
                            let mut buf = [0u8; 65536];
                            let _ = client.read(&mut buf);
                            let _ = client.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                        });
                    }
                    3 => {
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_secs(120));
                            drop(client);
                        });
                    }
                    _ => drop(client),
                }
            }
        });
        FaultProxy { endpoint, fault }
    }

    pub fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }
}

/// Reads the store's answers on a connection and drops them, until it closes.
fn lose(mut answers: std::net::TcpStream) {
    use std::io::Read;
    let mut buf = [0u8; 64 * 1024];
    while matches!(answers.read(&mut buf), Ok(n) if n > 0) {}
}

/// Copies `from` to `to` until either closes, or until the proxy leaves the mode the
/// connection was `opened` in (then both are cut, as a store that goes away cuts its open
/// connections).
fn pass(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    mode: &std::sync::atomic::AtomicU8,
    opened: u8,
) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if mode.load(Ordering::SeqCst) != opened || to.write_all(&buf[..n]).is_err() {
            let _ = from.shutdown(std::net::Shutdown::Both);
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// A fresh bucket with the hand fixture under `landing/lastfm/`.
pub fn hand_bucket(s3: &S3, tag: &str) -> Bucket {
    let bucket = s3.bucket(tag);
    for f in [PLAYS, PROFILES] {
        let bytes = std::fs::read(hand_landing().join("lastfm").join(f)).expect("fixture");
        bucket.put(&format!("landing/lastfm/{f}"), bytes);
    }
    bucket
}

/// Every file under `dir`, as (path relative to `dir`, bytes).
pub fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

/// Runs the project's generator: `lake-gen <kind> <out> <args…>`; it must succeed.
pub fn lake_gen(kind: &str, out: &Path, args: &[&str]) {
    let generated = Command::new(bin("lake-gen"))
        .args([kind, &out.display().to_string()])
        .args(args)
        .output()
        .expect("lake-gen");
    assert!(
        generated.status.success(),
        "lake-gen: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
}

/// A copy of the hand fixture's landing folder in `dir`, to which a test can add files.
pub fn hand_landing_copy(dir: &TempDir) -> PathBuf {
    let landing = dir.join("landing");
    std::fs::create_dir_all(landing.join("lastfm")).expect("mkdir");
    for f in [PLAYS, PROFILES] {
        std::fs::copy(
            hand_landing().join("lastfm").join(f),
            landing.join("lastfm").join(f),
        )
        .expect("copy fixture");
    }
    landing
}

/// Whether script(1) is there to give a job a terminal; says so when it is not.
pub fn has_script() -> bool {
    let there = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    there || unavailable::<()>("no `script` (util-linux) to give a job a terminal").is_some()
}

/// An environment as the `(&str, &str)` pairs [`run`] takes.
pub fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Writes a lease of `job` held by run `run_id` into the local lake `lake` as a run of another
/// process would (`hold` and `holder` as JSON; the lease lives `ttl_ms` from the file's time),
/// its file's time set to `at` (`touch -d`) when given. Returns the lease file.
pub fn write_lease(
    lake: &Path,
    job: &str,
    run_id: &str,
    hold: &str,
    holder: &str,
    ttl_ms: u64,
    at: Option<&str>,
) -> PathBuf {
    let folder = lake.join("_leases").join(job).join(run_id);
    std::fs::create_dir_all(&folder).expect("lease folder");
    let file = folder.join("000001.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"run_id":"{run_id}","hold":{hold},"ttl_ms":{ttl_ms},"holder":{holder},"epoch":1,"state":{{"kind":"held"}},"nonce":"x"}}"#
        ),
    )
    .expect("write lease");
    if let Some(at) = at {
        let touched = Command::new("touch")
            .args(["-d", at, &file.display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(touched, "touch -d {at}");
    }
    file
}

/// A lease holder on another machine.
pub const ELSEWHERE: &str = r#"{"host":"elsewhere","pid":4242,"boot_id":"another-machine"}"#;

/// A job stopped at a fault point (`LAKE_TEST_FAULT=pause:<point>`) with SIGSTOP, as a long
/// pause stops a process (a GC, a VM migration), to be resumed later.
pub struct Paused {
    child: std::process::Child,
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `job` (see [`spawn`]) and waits until it stopped at `point`; fails the test when it
/// ends first.
pub fn pause_at(job: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)], point: &str) -> Paused {
    use std::io::BufRead;
    let fault = format!("pause:{point}");
    let env: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("LAKE_TEST_FAULT", fault.as_str())])
        .collect();
    let mut child = spawn(job, cwd, args, &env);
    let stderr = child.stderr.take().expect("stderr");
    let (paused, reached) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("pausing here") {
                let _ = paused.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    if reached
        .recv_timeout(std::time::Duration::from_secs(300))
        .is_err()
    {
        let _ = child.kill();
        let seen = reader.join().unwrap_or_default();
        panic!("{job} never reached {point}:\n{seen}");
    }
    // the process stops itself right after saying so
    wait_until_stopped(child.id());
    Paused {
        child,
        stderr: reader,
    }
}

/// Waits until process `pid` is stopped (state `T` in `/proc/<pid>/stat`).
fn wait_until_stopped(pid: u32) {
    for _ in 0..200 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if matches!(state, Some("T") | Some("t")) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("process {pid} did not stop");
}

impl Paused {
    /// Resumes the job with SIGCONT and collects what it left behind when it ends.
    pub fn resume(self) -> Ran {
        let resumed = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(resumed, "SIGCONT");
        let out = self.child.wait_with_output().expect("wait for job binary");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let record = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: self.stderr.join().unwrap_or_default(),
            record,
        }
    }
}
