//! Where a seed runs: a lake and a landing zone on the local file system or on LocalStack, the
//! pool of landing objects delivered into it, and the job processes it starts, faults and all.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use super::schedule::{Fault, Launch, StoreFault};
use crate::{Bucket, Fault as ProxyFault, FaultProxy, S3, bin, files_under, lake_gen, snapshot};

/// A lease TTL short enough for stalls to outlast it within a seed.
pub const LEASE_TTL_SECS: u64 = 3;

/// How long a stalled run stays stopped: past its lease's TTL by the store's clock (whose
/// timestamps are allowed two seconds of slack), so that another run may take it over.
pub const STALL: Duration = Duration::from_secs(LEASE_TTL_SECS + 4);

/// Columns that differ between the lake of a schedule and one clean run's: run ids and
/// times, bronze batch numbers, and ETags (copies of a file on a local disk differ in them).
pub const NOT_COMPARED: &[&str] = &[
    "charted_at",
    "window_batch",
    "run_id",
    "ingested_at",
    "quarantined_at",
    "landed_at",
    "batch",
    "e_tag",
];

/// The landing objects a seed delivers: every source, small, generated once.
pub struct Pool {
    pub dir: PathBuf,
    /// Paths below `dir` (`lastfm/plays-0.tsv`), sorted.
    pub objects: Vec<String>,
}

impl Pool {
    /// Generates the pool into `dir` with the project's generator (the same on every machine).
    pub fn generate(dir: &Path) -> Pool {
        let _ = std::fs::remove_dir_all(dir);
        let plays = dir.join("lastfm");
        std::fs::create_dir_all(&plays).expect("pool folder");
        // plays a year apart, each file within ten months: a batch of one file touches months
        // no other batch touches
        let starts = [
            "2005-02-14",
            "2006-03-01",
            "2007-04-01",
            "2008-05-01",
            "2009-06-01",
        ];
        for (n, start) in starts.iter().enumerate() {
            let generated = dir.join(format!(".gen-{n}"));
            let seed = (n + 1).to_string();
            let args = [
                "--rows",
                "400",
                "--users",
                "12",
                "--seed",
                &seed,
                "--start",
                start,
                "--months",
                "10",
                "--bad-rate",
                "0.01",
                "--dup-rate",
                "0.01",
            ];
            lake_gen("lastfm", &generated, &args);
            let plays_file = generated.join(crate::PLAYS);
            std::fs::copy(plays_file, plays.join(format!("plays-{n}.tsv"))).expect("copy");
            if n == 0 {
                std::fs::copy(generated.join(crate::PROFILES), plays.join(crate::PROFILES))
                    .expect("copy");
            }
            let _ = std::fs::remove_dir_all(generated);
        }
        let sparkify = ["--songs", "20", "--events", "400", "--users", "10"];
        lake_gen("sparkify", &dir.join("sparkify"), &sparkify);
        let deezer = [
            "--days",
            "3",
            "--streams",
            "200",
            "--users",
            "60",
            "--songs",
            "100",
        ];
        lake_gen("deezer", &dir.join("deezer"), &deezer);
        lake_gen(
            "eventsim",
            &dir.join("eventsim"),
            &["--days", "2", "--users", "10"],
        );
        let mut objects: Vec<String> = files_under(dir).into_iter().map(|(rel, _)| rel).collect();
        objects.sort();
        Pool {
            dir: dir.to_path_buf(),
            objects,
        }
    }
}

/// The store a seed runs on.
pub enum Store {
    Local,
    S3(S3),
}

impl Store {
    pub fn name(&self) -> &'static str {
        match self {
            Store::Local => "local",
            Store::S3(_) => "s3",
        }
    }
}

/// A seed's lake and landing zone, and its working directory (with the `lake.toml` the jobs
/// read: short leases, quick S3 timeouts).
pub struct World {
    pub dir: PathBuf,
    pub lake: String,
    pub landing: String,
    bucket: Option<Bucket>,
    env: Vec<(&'static str, String)>,
    endpoint: Option<String>,
}

impl World {
    /// A fresh world in `dir`; with `compat`, no `lake.toml` (earlier versions of the jobs
    /// refuse keys they do not know).
    pub fn new(store: &Store, dir: PathBuf, tag: &str, compat: bool) -> World {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("seed folder");
        if !compat {
            std::fs::write(
                dir.join("lake.toml"),
                format!(
                    "lease_ttl_secs = {LEASE_TTL_SECS}\ns3_max_retries = 2\n\
                     s3_retry_timeout_secs = 4\ns3_request_timeout_secs = 2\n"
                ),
            )
            .expect("lake.toml");
        }
        match store {
            Store::Local => World {
                lake: dir.join("lake").display().to_string(),
                landing: dir.join("landing").display().to_string(),
                dir,
                bucket: None,
                env: Vec::new(),
                endpoint: None,
            },
            Store::S3(s3) => {
                let bucket = s3.bucket(tag);
                World {
                    lake: bucket.url("lake"),
                    landing: bucket.url("landing"),
                    dir,
                    env: s3.env(),
                    endpoint: Some(s3.endpoint.clone()),
                    bucket: Some(bucket),
                }
            }
        }
    }

    /// The landing zone's URL as rows name its objects.
    pub fn landing_url(&self) -> String {
        match &self.bucket {
            None => format!("file://{}/", self.landing),
            Some(_) => format!("{}/", self.landing),
        }
    }

    pub fn env(&self) -> Vec<(&'static str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// Puts the pool's objects `objects` into the landing zone.
    pub fn deliver(&self, pool: &Pool, objects: &[usize]) {
        for &i in objects {
            let rel = &pool.objects[i];
            let bytes = std::fs::read(pool.dir.join(rel)).expect("pool object");
            match &self.bucket {
                None => {
                    let to = Path::new(&self.landing).join(rel);
                    std::fs::create_dir_all(to.parent().expect("a folder")).expect("mkdir");
                    std::fs::write(to, bytes).expect("deliver");
                }
                Some(bucket) => bucket.put(&format!("landing/{rel}"), bytes),
            }
        }
    }

    /// Starts a run as `launch` says, faults and all.
    pub fn start(&self, launch: &Launch) -> Proc {
        let mut cmd = Command::new(bin(launch.job.name()));
        cmd.current_dir(&self.dir)
            .args(["--lake", &self.lake, "--landing", &self.landing])
            .args(launch.args());
        for var in [
            "LAKE_ROOT",
            "LAKE_LANDING",
            "LAKE_CONFIG",
            "LAKE_LOG_FORMAT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        match &launch.fault {
            Fault::Crash(point) => {
                cmd.env("LAKE_TEST_FAULT", point);
            }
            Fault::Stall {
                at: Some(point), ..
            } => {
                cmd.env("LAKE_TEST_FAULT", format!("pause:{point}"));
            }
            _ => {}
        }
        let proxy = match (&launch.fault, &self.endpoint) {
            (Fault::Store { .. }, Some(endpoint)) => {
                let proxy = FaultProxy::start(endpoint);
                cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint);
                Some(proxy)
            }
            _ => None,
        };
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start a job");
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = child.stdout.take().map(|p| read(Box::new(p)));
        let stderr = child.stderr.take().map(|p| read(Box::new(p)));
        Proc {
            label: launch.to_string(),
            fault: launch.fault.clone(),
            child,
            started: Instant::now(),
            stdout,
            stderr,
            proxy,
            stopped_at: None,
            code: None,
        }
    }

    /// Every table of the lake as rows (see [`snapshot`]), with the landing zone's URL written
    /// as `<landing>/`.
    pub fn tables(&self) -> BTreeMap<String, Vec<String>> {
        let landing = self.landing_url();
        snapshot(&self.lake, &self.env(), NOT_COMPARED)
            .into_iter()
            .map(|(t, rows)| {
                let mut rows: Vec<String> = rows
                    .iter()
                    .map(|r| r.replace(&landing, "<landing>/"))
                    .collect();
                rows.sort();
                (t, rows)
            })
            .collect()
    }

    /// The deliverables gold wrote: every file under `<lake>/gold/` but the report.
    pub fn answers(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        match &self.bucket {
            None => {
                let gold = Path::new(&self.lake).join("gold");
                if gold.is_dir() {
                    out.extend(files_under(&gold));
                }
            }
            Some(bucket) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let prefix = ObjectPath::from("lake/gold");
                let listed: Vec<object_store::ObjectMeta> = rt
                    .block_on(bucket.store.list(Some(&prefix)).try_collect())
                    .expect("list gold");
                for meta in listed {
                    let key = meta.location.as_ref().to_string();
                    let rel = key.trim_start_matches("lake/gold/").to_string();
                    let got = rt.block_on(async {
                        let got = bucket.store.get(&meta.location).await?;
                        got.bytes().await
                    });
                    out.insert(rel, got.expect("a gold file").to_vec());
                }
            }
        }
        // the deliverables: not the report (it shows times), not the tables' files (compared as
        // tables), nor what a killed writer left staged
        out.retain(|rel, _| {
            !rel.starts_with("report/") && (rel.ends_with(".tsv") || rel.ends_with(".txt"))
        });
        out
    }
}

/// A job process of a schedule.
pub struct Proc {
    pub label: String,
    pub fault: Fault,
    child: Child,
    started: Instant,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    proxy: Option<FaultProxy>,
    /// When it was stopped (a stall), to be resumed a while later.
    pub stopped_at: Option<Instant>,
    code: Option<i32>,
}

/// How a process ended.
pub struct Ended {
    pub label: String,
    pub fault: Fault,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run record: the last stdout line.
    pub record: serde_json::Value,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Applies the fault's timers; whether the process has ended.
    pub fn poll(&mut self) -> bool {
        if self.code.is_some() {
            return true;
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.code = Some(status.code().unwrap_or(-1));
            return true;
        }
        let since = self.started.elapsed();
        match &self.fault {
            Fault::Kill { after_ms } if since >= Duration::from_millis(*after_ms) => {
                signal(self.pid(), "-KILL");
            }
            Fault::Stall { at: None, after_ms }
                if self.stopped_at.is_none() && since >= Duration::from_millis(*after_ms) =>
            {
                signal(self.pid(), "-STOP");
                self.stopped_at = Some(Instant::now());
            }
            Fault::Stall { at: Some(_), .. }
                if self.stopped_at.is_none() && is_stopped(self.pid()) =>
            {
                self.stopped_at = Some(Instant::now());
            }
            Fault::Store {
                mode,
                after_ms,
                for_ms,
            } => {
                if let Some(proxy) = &self.proxy {
                    let on = Duration::from_millis(*after_ms);
                    let off = on + Duration::from_millis(*for_ms);
                    proxy.set(if since >= on && since < off {
                        match mode {
                            StoreFault::Down => ProxyFault::Down,
                            StoreFault::Unavailable => ProxyFault::Unavailable,
                            StoreFault::Hang => ProxyFault::Hang,
                            StoreFault::LoseAnswers => ProxyFault::LoseAnswers,
                        }
                    } else {
                        ProxyFault::None
                    });
                }
            }
            _ => {}
        }
        false
    }

    /// Whether it has ended (as the last [`Proc::poll`] found).
    pub fn finished(&self) -> bool {
        self.code.is_some()
    }

    /// Whether it is stopped (stalled) rather than running.
    pub fn stalled(&self) -> bool {
        self.stopped_at.is_some() && self.code.is_none()
    }

    /// Resumes a stalled process if it has been stopped for [`STALL`]; whether it did.
    pub fn resume_if_due(&mut self) -> bool {
        match self.stopped_at {
            Some(at) if at.elapsed() >= STALL => {
                self.resume_when_due();
                true
            }
            _ => false,
        }
    }

    /// Resumes a stalled process once it has been stopped for [`STALL`].
    pub fn resume_when_due(&mut self) {
        if let Some(at) = self.stopped_at {
            let left = STALL.saturating_sub(at.elapsed());
            std::thread::sleep(left);
            signal(self.pid(), "-CONT");
            self.stopped_at = None;
            // a stall is once
            self.fault = Fault::None;
        }
    }

    /// Waits for the end (resuming it first if it is stalled) and collects what it left.
    pub fn wait(mut self) -> Ended {
        self.resume_when_due();
        while !self.poll() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let text =
            |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        let stdout = text(self.stdout.take());
        let record = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        Ended {
            label: self.label,
            fault: self.fault,
            code: self.code.unwrap_or(-1),
            stderr: text(self.stderr.take()),
            stdout,
            record,
        }
    }
}

fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill")
        .args([which, &pid.to_string()])
        .status();
}

fn is_stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("T") | Some("t"))
}
