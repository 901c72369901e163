//! Gold and ad-hoc SQL on Apache DataFusion Ballista: a scheduler and two executors of the
//! project's own `lake cluster`, started here on loopback, over a LocalStack lake. Gold on the
//! cluster writes the tables and answer gold writes in one process, and a scan of a table of
//! hundreds of files is spread over both executors (their task metrics say so).
//!
//! Needs gold and lake built with the `cluster` feature (`make build CLUSTER=1`; `make test`
//! does it): skipped with a message otherwise, failed under CI.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lake_tests::*;

/// Whether `lake` was built with the cluster commands.
fn cluster_built() -> bool {
    let built = Command::new(bin("lake"))
        .args(["cluster", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !built && std::env::var_os("LAKE_TEST_CLUSTER").is_some() {
        panic!("LAKE_TEST_CLUSTER is set but lake has no `cluster` command: build with CLUSTER=1");
    }
    built
        || unavailable::<()>("lake was built without the cluster feature (make build CLUSTER=1)")
            .is_some()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A process of the cluster, its stderr collected as it runs; killed when dropped.
struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Process {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut cmd = Command::new(bin("lake"));
        cmd.args(args)
            .envs(env.iter().copied())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LAKE_LOG", "info,ballista_executor::metrics=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start lake cluster");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        Process { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scheduler and two executors with two task slots each, on loopback.
struct Cluster {
    url: String,
    scheduler: Process,
    executors: Vec<Process>,
}

impl Cluster {
    fn start(lake: &str, env: &[(&str, &str)]) -> Cluster {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let scheduler = Process::start(&["cluster", "scheduler", "--bind", &bind], env);
        let executors = (0..2)
            .map(|_| {
                let (flight, grpc) = (free_port().to_string(), free_port().to_string());
                Process::start(
                    &[
                        "--lake",
                        lake,
                        "cluster",
                        "executor",
                        "--scheduler",
                        &bind,
                        "--bind-host",
                        "127.0.0.1",
                        "--port",
                        &flight,
                        "--grpc-port",
                        &grpc,
                        "--tasks",
                        "2",
                    ],
                    env,
                )
            })
            .collect();
        let cluster = Cluster {
            url: format!("df://{bind}"),
            scheduler,
            executors,
        };
        cluster.wait_for_executors();
        cluster
    }

    /// Waits until the scheduler has registered both executors.
    fn wait_for_executors(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let log = self.scheduler.log();
            if log.matches("register executor request").count() >= 2 {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the executors did not register in 60 s:\nscheduler: {}\nexecutor: {}",
            self.scheduler.log(),
            self.executors[0].log()
        );
    }

    /// How many tasks each executor ran, by its task metrics.
    fn tasks_per_executor(&self) -> Vec<usize> {
        self.executors
            .iter()
            .map(|e| e.log().matches("Physical plan with metrics").count())
            .collect()
    }
}

/// Last.fm plays over `months` months, a few per month: one file per month partition.
fn plays_over_months(months: u32) -> Vec<u8> {
    let mut tsv = String::new();
    for m in 0..months {
        let (year, month) = (2000 + m / 12, m % 12 + 1);
        for (i, user) in ["user_000001", "user_000002"].iter().enumerate() {
            tsv.push_str(&format!(
                "{user}\t{year:04}-{month:02}-1{i}T12:00:00Z\t\tArtist {m}\t\tSong {i}\n"
            ));
        }
    }
    tsv.into_bytes()
}

#[test]
fn gold_on_a_ballista_cluster_writes_what_gold_writes_in_one_process() {
    if !cluster_built() {
        return;
    }
    let Some(s3) = S3::get() else { return };
    let dir = TempDir::new("cluster");
    let bucket = s3.bucket("cluster");
    for (source, hand) in [
        ("lastfm", "lastfm-hand"),
        ("deezer", "deezer-hand"),
        ("eventsim", "eventsim-hand"),
    ] {
        bucket.put_tree(&format!("landing/{source}"), &fixture(hand).join(source));
    }
    let env = s3.env();
    let env = pairs(&env);
    let landing = bucket.url("landing");
    let (here, there) = (bucket.url("here"), bucket.url("there"));
    for lake in [&here, &there] {
        let args = ["--lake", lake.as_str(), "--landing", landing.as_str()];
        run("bronze", dir.path(), &args, &env).ok();
        run("silver", dir.path(), &args, &env).ok();
    }
    run("gold", dir.path(), &["--lake", &here], &env).ok();

    let cluster = Cluster::start(&there, &env);
    let gold = run(
        "gold",
        dir.path(),
        &["--lake", &there, "--scheduler", &cluster.url],
        &env,
    )
    .ok();
    assert!(
        gold.detail("sql_ran")
            .as_str()
            .is_some_and(|s| s.contains("Ballista")),
        "{}",
        gold.stdout
    );
    assert!(
        cluster.tasks_per_executor().iter().sum::<usize>() > 0,
        "the executors ran gold's tasks"
    );
    let gold_tables = |lake: &str| {
        let mut all = snapshot(lake, &env, &["run_id", "charted_at"]);
        all.retain(|table, _| table.starts_with("gold."));
        all
    };
    assert_same_lake(
        &gold_tables(&there),
        &gold_tables(&here),
        "gold on the cluster",
    );
    assert_eq!(
        String::from_utf8_lossy(&bucket.get("there/gold/lastfm/top_songs.tsv")),
        hand_expected()
    );
}

#[test]
fn a_scan_of_hundreds_of_files_is_spread_over_both_executors() {
    if !cluster_built() {
        return;
    }
    let Some(s3) = S3::get() else { return };
    let dir = TempDir::new("cluster-spread");
    let bucket = s3.bucket("cluster-spread");
    bucket.put(&format!("landing/lastfm/{PLAYS}"), plays_over_months(240));
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let args = ["--lake", lake.as_str(), "--landing", landing.as_str()];
    run("bronze", dir.path(), &args, &env).ok();
    run("silver", dir.path(), &args, &env).ok();
    let files = lake_sql(
        &lake,
        "SELECT count(DISTINCT year * 100 + month) AS months FROM silver.lastfm_listens",
        &env,
    );
    assert_eq!(files[0]["months"], 240, "a file per month partition");

    let cluster = Cluster::start(&lake, &env);
    let query = "SELECT year, count(*) AS plays, count(DISTINCT user_id) AS users \
                 FROM silver.lastfm_listens GROUP BY year ORDER BY year";
    let here = lake_sql(&lake, query, &env);
    let ran = run(
        "lake",
        dir.path(),
        &[
            "--lake",
            &lake,
            "sql",
            query,
            "--format",
            "json",
            "--scheduler",
            &cluster.url,
        ],
        &env,
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let there: Vec<serde_json::Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    assert_eq!(there, here, "the same rows as in one process");
    assert_eq!(there.len(), 20);
    let tasks = cluster.tasks_per_executor();
    assert!(
        tasks.iter().all(|&t| t > 0),
        "every executor ran tasks of the scan: {tasks:?}"
    );
    eprintln!("tasks per executor: {tasks:?}");
}
