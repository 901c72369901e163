//! Runs of a job exclude each other where they write the same part of the lake, and only there;
//! a run that lost its lease learns it, and its commits are refused (see [`crate::fence`]).
//!
//! **Layout.** A run's lease is a folder `<lake>/_leases/<job>/<run id>/` of versions
//! `000000.json`, `000001.json`, …, each written with an atomic create-if-absent: the newest
//! version is the lease's state, and writing the next version is a compare-and-set that works
//! on S3 and on a local file system alike. A version says what the run writes (a [`Hold`]:
//! everything, a range of days, a shard), its TTL, who holds it ([`Identity`]) and its state:
//! held, dead (another run took it over and owes the fences), or fenced.
//!
//! **Taking a lease** is *write, then look*: the run writes its first version, then lists the
//! job's leases. Of two overlapping runs each writes before it looks, so the one that looks
//! last sees the other: they never both proceed; two that both step back try again a random
//! pause apart. A lease is live until the store's clock passes its newest version's time plus
//! its TTL (the reader's own fresh version gives the store's "now": no two machines' clocks are
//! compared), or until its process is known to be gone (the same boot and pid namespace and no
//! such process, [`Identity::is_gone`]). A lease that cannot be read counts as live: a newer
//! version's lease is never mistaken for a dead one. A dead lease that overlaps is taken over by
//! writing its next version as *dead*: a conditional write, so a holder that renewed meanwhile
//! wins and stays. Then the run takes an **epoch**, the next number of the job's counter
//! (`_leases/<job>/_epochs/<n>`, created once each), and confirms it still holds its lease by
//! writing its next version. The takeover happened before the epoch was taken, so the run that
//! took over always has a higher epoch than any run it took over that got past confirming.
//!
//! **Renewal** writes the next version every third of the TTL on a fixed schedule, each attempt
//! bounded to a sixth of the TTL. A renewal that finds its next version already written learns
//! that the lease was taken over; a run whose last successful renewal started more than five
//! sixths of the TTL ago stops before its next commit too ([`Health`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{LakeError, Result};
use crate::identity::Identity;
use crate::store::Location;

/// How long a lease lives without a renewal, unless `lease_ttl_secs` says otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(90);

/// The resolution of a store's timestamps (S3's are whole seconds), allowed for when one lease's
/// time is compared with another's.
const SLACK: Duration = Duration::from_secs(2);

/// Times a run writes its lease and looks for overlapping ones before it gives up (exit 4).
const ATTEMPTS: u32 = 3;

/// How long a fenced lease's folder is kept, so that its holder, should it wake up from a long
/// stall, finds its lease taken over when it next renews.
const FENCED_KEPT: Duration = Duration::from_secs(24 * 3600);

/// What part of its layer a run writes, as far as other runs of the job are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    /// Everything: every other run of the job is excluded.
    #[default]
    All,
    /// The partitions of these days, inclusive (`None`: open-ended).
    Days {
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
    /// The landing objects whose stable hash falls in shard `index` of `count`.
    Shard { index: u32, count: u32 },
}

impl Hold {
    /// Whether two runs holding these may write the same thing.
    pub fn overlaps(&self, other: &Hold) -> bool {
        match (self, other) {
            (Hold::Days { from: f1, to: t1 }, Hold::Days { from: f2, to: t2 }) => {
                let before = |to: &Option<NaiveDate>, from: &Option<NaiveDate>| matches!((to, from), (Some(t), Some(f)) if t < f);
                !(before(t1, f2) || before(t2, f1))
            }
            (
                Hold::Shard { index, count },
                Hold::Shard {
                    index: i2,
                    count: c2,
                },
            ) => !(count == c2 && index != i2),
            _ => true,
        }
    }

    /// A name for it in transaction ids (`all`, `shard.1.4`, `days.2009-01-01..2009-03-31`):
    /// equal holds have equal keys.
    pub fn key(&self) -> String {
        let day = |d: &Option<NaiveDate>| d.map_or(String::new(), |d| d.to_string());
        match self {
            Hold::All => "all".into(),
            Hold::Days { from, to } => format!("days.{}..{}", day(from), day(to)),
            Hold::Shard { index, count } => format!("shard.{index}.{count}"),
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = |d: &Option<NaiveDate>| d.map_or("…".to_string(), |d| d.to_string());
        match self {
            Hold::All => write!(f, "everything"),
            Hold::Days { from, to } => write!(f, "the days {}..{}", day(from), day(to)),
            Hold::Shard { index, count } => write!(f, "shard {index}/{count}"),
        }
    }
}

/// The state of a lease, as its newest version says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum State {
    Held,
    /// Run `by` took it over; the holder's commits are not yet fenced off in every table.
    Dead {
        by: String,
    },
    /// Run `by` fenced the holder off in every table of the job.
    Fenced {
        by: String,
    },
}

/// One version of a lease: `<lake>/_leases/<job>/<run id>/<seq>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Version {
    run_id: String,
    hold: Hold,
    ttl_ms: u64,
    holder: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    state: State,
    /// Tells this writer's version from another's when an answer was lost and the write retried.
    nonce: String,
}

impl Version {
    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }
}

/// A run found dead that this run took over (or found taken over): its commits are to be
/// fenced off in every table of the job before this run reads anything ([`crate::guard`]).
#[derive(Debug, Clone)]
pub struct Dead {
    pub run_id: String,
    pub hold: Hold,
    /// The version that says it is dead.
    pub(crate) seq: u64,
    pub(crate) ttl_ms: u64,
}

/// The leases of one job: `<lake>/_leases/<job>/`.
#[derive(Debug, Clone)]
struct Leases {
    job: String,
    folder: Location,
}

/// The newest version of one run's lease, as a listing found it.
struct Newest {
    run_id: String,
    seq: u64,
    meta: ObjectMeta,
}

/// What writing a version did.
enum Wrote {
    Written,
    /// Another writer's version is there.
    Taken,
}

impl Leases {
    fn open(root: &Location, job: &str) -> Result<Self> {
        Ok(Self {
            job: job.to_string(),
            folder: root.child("_leases")?.child(job)?,
        })
    }

    fn path(&self, run_id: &str, seq: u64) -> Result<Path> {
        Ok(self
            .folder
            .child(run_id)?
            .file_path(&format!("{seq:06}.json")))
    }

    fn url(&self, path: &Path) -> String {
        self.folder.object_url(path)
    }

    /// Writes version `seq` of `run_id`'s lease if no version `seq` exists yet. A version
    /// already there that carries `version`'s nonce is this writer's own (its answer was lost).
    async fn write(&self, seq: u64, version: &Version) -> Result<Wrote> {
        let path = self.path(&version.run_id, seq)?;
        let body = serde_json::to_vec(version).map_err(|e| LakeError::Config {
            message: format!("cannot encode a lease: {e}"),
        })?;
        let create = PutOptions::from(PutMode::Create);
        let store = self.folder.store();
        match store
            .put_opts(&path, PutPayload::from(Bytes::from(body)), create)
            .await
        {
            Ok(_) => Ok(Wrote::Written),
            Err(object_store::Error::AlreadyExists { .. }) => match self.read(&path).await? {
                Ok(there) if there.nonce == version.nonce => Ok(Wrote::Written),
                _ => Ok(Wrote::Taken),
            },
            Err(e) => Err(LakeError::store(self.url(&path))(e)),
        }
    }

    /// A version, or why it cannot be read.
    async fn read(&self, path: &Path) -> Result<std::result::Result<Version, String>> {
        let url = self.url(path);
        let got = match self.folder.store().get(path).await {
            Ok(got) => got.bytes().await.map_err(LakeError::store(&url))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Err("it was removed while being read".into()));
            }
            Err(e) => return Err(LakeError::store(url)(e)),
        };
        Ok(serde_json::from_slice(&got).map_err(|e| e.to_string()))
    }

    /// The newest version of every run's lease, and the objects that are not lease versions.
    async fn list(&self) -> Result<(Vec<Newest>, Vec<ObjectMeta>)> {
        let mut newest: BTreeMap<String, Newest> = BTreeMap::new();
        let mut strays = Vec::new();
        for meta in self.folder.list().await? {
            let rel = self.folder.relative(&meta.location);
            if rel.starts_with('_') {
                continue;
            }
            let parsed = rel.split_once('/').and_then(|(run, file)| {
                let seq = file.strip_suffix(".json")?.parse::<u64>().ok()?;
                Some((run.to_string(), seq))
            });
            match parsed {
                Some((run_id, seq)) => {
                    if newest.get(&run_id).is_none_or(|n| n.seq < seq) {
                        newest.insert(run_id.clone(), Newest { run_id, seq, meta });
                    }
                }
                None => strays.push(meta),
            }
        }
        Ok((newest.into_values().collect(), strays))
    }

    /// The newest version of a run's lease as it is now, from one a listing found (which its
    /// holder may have replaced since): `None` when the lease is gone (released).
    async fn newest_of(
        &self,
        listed: &Newest,
    ) -> Result<Option<(Newest, std::result::Result<Version, String>)>> {
        let mut current = Newest {
            run_id: listed.run_id.clone(),
            seq: listed.seq,
            meta: listed.meta.clone(),
        };
        for _ in 0..ATTEMPTS {
            let store = self.folder.store();
            match self.read(&current.meta.location).await? {
                Ok(version) => return Ok(Some((current, Ok(version)))),
                Err(why) if store.head(&current.meta.location).await.is_ok() => {
                    return Ok(Some((current, Err(why))));
                }
                // replaced since the listing: look again at that run's folder
                Err(_) => {
                    let folder = self.folder.child(&current.run_id)?;
                    let listed = folder.list().await?;
                    let Some(meta) = listed
                        .into_iter()
                        .max_by(|a, b| a.location.cmp(&b.location))
                    else {
                        return Ok(None);
                    };
                    let name = folder.relative(&meta.location);
                    let seq = name.strip_suffix(".json").and_then(|n| n.parse().ok());
                    current.seq = seq.unwrap_or(current.seq);
                    current.meta = meta;
                }
            }
        }
        let why = "it kept changing while being read".to_string();
        Ok(Some((current, Err(why))))
    }

    /// Deletes the versions of `run_id`'s lease older than `seq` (best effort: they are
    /// superseded, and a listing reads only the newest).
    async fn prune(&self, run_id: &str, seq: u64) {
        let Ok(folder) = self.folder.child(run_id) else {
            return;
        };
        let Ok(listed) = folder.list().await else {
            return;
        };
        for meta in listed {
            let name = folder.relative(&meta.location);
            let older = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s < seq);
            if older {
                let _ = self.folder.store().delete(&meta.location).await;
            }
        }
    }

    /// Deletes every version of `run_id`'s lease (and, on a local lake, its folder).
    async fn remove(&self, run_id: &str) {
        self.prune(run_id, u64::MAX).await;
        if let Ok(folder) = self.folder.child(run_id)
            && folder.is_local()
            && let Ok(dir) = folder.url().to_file_path()
        {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Takes the next number of the job's epoch counter: one more than the highest taken,
    /// each number created once. Numbers taken over an hour before the newest are deleted.
    async fn next_epoch(&self) -> Result<u64> {
        let folder = self.folder.child("_epochs")?;
        let listed = folder.list().await?;
        let number = |m: &ObjectMeta| folder.relative(&m.location).parse::<u64>().ok();
        let mut next = listed.iter().filter_map(number).max().unwrap_or(0) + 1;
        for _ in 0..1000 {
            let path = folder.file_path(&format!("{next:012}"));
            let create = PutOptions::from(PutMode::Create);
            let store = folder.store();
            match store.put_opts(&path, PutPayload::new(), create).await {
                Ok(_) => {
                    let newest = listed.iter().map(|m| m.last_modified).max();
                    let old = |m: &&ObjectMeta| {
                        newest.is_some_and(|n| n - m.last_modified > chrono::Duration::hours(1))
                    };
                    for m in listed.iter().filter(old) {
                        let _ = store.delete(&m.location).await;
                    }
                    return Ok(next);
                }
                Err(object_store::Error::AlreadyExists { .. }) => next += 1,
                Err(e) => return Err(LakeError::store(folder.object_url(&path))(e)),
            }
        }
        Err(LakeError::Busy {
            message: format!(
                "{}: a thousand runs of {} took an epoch at the same moment; retry",
                folder.url(),
                self.job
            ),
        })
    }
}

/// How a run's lease is doing: whether it may still commit.
#[derive(Debug)]
pub struct Health {
    url: String,
    ttl: Duration,
    /// When the last successful write of the lease started, by [`since_boot`] (the store's
    /// time of it is later).
    renewed: Mutex<Duration>,
    lost: AtomicBool,
}

/// Time since the machine booted, suspended time included (`CLOCK_BOOTTIME`): a suspended VM
/// or a machine asleep shows here as time passed, where the monotonic clock stood still.
pub(crate) fn since_boot() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec it is given, which lives here
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0 {
            let nanos = ts.tv_nsec.clamp(0, 999_999_999) as u32;
            return Duration::new(ts.tv_sec.max(0) as u64, nanos);
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl Health {
    /// A lease of `ttl` at `url`, last written at `renewed` (by [`since_boot`]).
    pub(crate) fn new(url: String, ttl: Duration, renewed: Duration) -> Self {
        Self {
            url,
            ttl,
            renewed: Mutex::new(renewed),
            lost: AtomicBool::new(false),
        }
    }

    /// Why this run must not commit any more, if it must not.
    pub fn problem(&self) -> Option<String> {
        let ttl = self.ttl.as_secs_f64();
        if self.lost.load(Ordering::SeqCst) {
            return Some(format!(
                "this run's lease {} was taken over by another run: this run stalled for longer \
                 than the lease's {ttl:.0} s TTL (a pause, a slow or unreachable store), so another \
                 run now writes what it writes. It stopped before its next commit; what it \
                 committed before is kept. Run it again (exit 4: retry later)",
                self.url
            ));
        }
        let renewed = self.renewed.lock().map(|r| *r).unwrap_or_default();
        let since = since_boot().saturating_sub(renewed);
        (since > self.ttl - self.ttl / 6).then(|| {
            format!(
                "this run's lease {} was last renewed {:.0} s ago, close to its {ttl:.0} s TTL \
                 (the store did not answer): another run may take it over at any moment, so this \
                 run stopped before its next commit; what it committed before is kept. Run it \
                 again (exit 4: retry later)",
                self.url,
                since.as_secs_f64()
            )
        })
    }
}

/// A held lease; [`Lease::release`] gives it back (a dropped lease expires after its TTL).
#[derive(Debug)]
pub struct Lease {
    leases: Leases,
    run_id: String,
    /// The newest version written.
    seq: Arc<AtomicU64>,
    health: Arc<Health>,
    heartbeat: JoinHandle<()>,
}

/// A lease just taken: the lease, this run's epoch, and the runs found dead whose commits are
/// to be fenced off before this run goes on ([`Lease::fenced`] once they are).
#[derive(Debug)]
pub struct Taken {
    pub lease: Lease,
    pub epoch: u64,
    pub dead: Vec<Dead>,
}

/// What looking at the other leases found.
enum Look {
    Clear(Vec<Dead>),
    Busy(LakeError),
}

impl Lease {
    /// Takes a lease of `job` on the lake whose root is `root` for what `hold` writes, or says
    /// which run holds an overlapping one (exit 4).
    pub async fn acquire(
        root: &Location,
        job: &str,
        hold: Hold,
        run_id: &str,
        ttl: Duration,
    ) -> Result<Taken> {
        let leases = Leases::open(root, job)?;
        let mut version = Version {
            run_id: run_id.to_string(),
            hold,
            ttl_ms: ttl.as_millis() as u64,
            holder: Identity::current(),
            epoch: None,
            state: State::Held,
            nonce: nonce(),
        };
        let mut seq = 0;
        let dead = loop {
            seq += 1;
            version.nonce = nonce();
            leases.write(seq, &version).await?;
            match look(&leases, run_id, hold).await? {
                Look::Clear(dead) => break dead,
                Look::Busy(busy) => {
                    leases.remove(run_id).await;
                    if seq >= u64::from(ATTEMPTS) {
                        return Err(busy);
                    }
                    // two runs that started together both step back: a random pause makes
                    // one of them look again first, and find the way clear
                    tokio::time::sleep(jitter(run_id, seq)).await;
                }
            }
        };
        let epoch = leases.next_epoch().await?;
        // the confirmation: a run that took this lease over meanwhile wrote this version first
        let renewed = since_boot();
        seq += 1;
        version.epoch = Some(epoch);
        version.nonce = nonce();
        if let Wrote::Taken = leases.write(seq, &version).await? {
            return Err(LakeError::Busy {
                message: format!(
                    "another {job} run took over this run's lease while it started (it stalled \
                     for longer than the lease's TTL); nothing was written: retry later"
                ),
            });
        }
        leases.prune(run_id, seq).await;
        let url = leases.url(&leases.path(run_id, seq)?);
        let health = Arc::new(Health::new(url.clone(), ttl, renewed));
        let seq = Arc::new(AtomicU64::new(seq));
        let renewal = Renewal {
            leases: leases.clone(),
            version,
            seq: seq.clone(),
            health: health.clone(),
        };
        let heartbeat = tokio::spawn(renewal.on_schedule(Instant::now()));
        tracing::info!(lease = %url, epoch, "lease taken: this run writes {hold}");
        Ok(Taken {
            lease: Lease {
                leases,
                run_id: run_id.to_string(),
                seq,
                health,
                heartbeat,
            },
            epoch,
            dead,
        })
    }

    /// Whether this run may still commit (shared with the lake's writes).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Notes that the commits of `dead` are fenced off in every table: later runs need not
    /// fence them again, and their folders go after a while.
    pub async fn fenced(&self, dead: &[Dead]) {
        for d in dead {
            let version = Version {
                run_id: d.run_id.clone(),
                hold: d.hold,
                ttl_ms: d.ttl_ms,
                holder: Identity::current(),
                epoch: None,
                state: State::Fenced {
                    by: self.run_id.clone(),
                },
                nonce: nonce(),
            };
            match self.leases.write(d.seq + 1, &version).await {
                Ok(_) => self.leases.prune(&d.run_id, d.seq).await,
                Err(e) => tracing::warn!("could not mark {}'s lease as fenced: {e}", d.run_id),
            }
        }
    }

    /// Gives the lease back: deletes its versions, unless another run took it over (its
    /// versions then say so to whoever comes next).
    pub async fn release(self) {
        self.heartbeat.abort();
        if self.health.lost.load(Ordering::SeqCst) {
            return;
        }
        let seq = self.seq.load(Ordering::SeqCst);
        let Ok(next) = self.leases.path(&self.run_id, seq + 1) else {
            return;
        };
        if self.leases.folder.store().head(&next).await.is_ok() {
            tracing::warn!("this run's lease was taken over while it ended");
            return;
        }
        self.leases.remove(&self.run_id).await;
        tracing::info!("lease released");
    }
}

fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A pause of 0.2 to 1.2 s, different for each run and attempt.
fn jitter(run_id: &str, attempt: u64) -> Duration {
    let h = crate::functions::fnv1a(run_id.bytes().chain(attempt.to_le_bytes()));
    Duration::from_millis(200 + h % 1000)
}

/// Looks at the job's other leases: an error naming a live one that overlaps `hold` (or one
/// that cannot be read); else the runs found dead, overlapping ones taken over on the way.
async fn look(leases: &Leases, run_id: &str, hold: Hold) -> Result<Look> {
    let (newest, strays) = leases.list().await?;
    if let Some(stray) = strays.first() {
        return Ok(Look::Busy(unreadable(
            leases,
            &stray.location,
            "it is not a lease version (an earlier version of the jobs wrote leases as \
             `_leases/<job>/<run>.json`)",
        )));
    }
    // the store's clock: when this run's own newest version was written
    let Some(now) = newest
        .iter()
        .find(|n| n.run_id == run_id)
        .map(|n| n.meta.last_modified)
    else {
        return Err(LakeError::Busy {
            message: format!(
                "this run's lease under {} was removed while it started; retry",
                leases.folder.url()
            ),
        });
    };
    let mut dead = Vec::new();
    for listed in newest.iter().filter(|n| n.run_id != run_id) {
        // the version listed may be gone by now: its holder renewed (and pruned it) or released
        let Some((other, version)) = leases.newest_of(listed).await? else {
            continue;
        };
        let version = match version {
            Ok(version) => version,
            Err(why) => return Ok(Look::Busy(unreadable(leases, &other.meta.location, &why))),
        };
        let other = &other;
        match &version.state {
            State::Fenced { .. } => {
                let kept = chrono::Duration::from_std(FENCED_KEPT).unwrap_or(chrono::Duration::MAX);
                if now - other.meta.last_modified > kept {
                    leases.remove(&other.run_id).await;
                }
            }
            // its fences are owed by whoever overlaps it: a run that does not would fence a
            // live run that took it over with the same hold
            State::Dead { .. } if version.hold.overlaps(&hold) => dead.push(Dead {
                run_id: version.run_id,
                hold: version.hold,
                seq: other.seq,
                ttl_ms: version.ttl_ms,
            }),
            State::Dead { .. } => {}
            State::Held => {
                let expired = now > other.meta.last_modified + version.ttl() + SLACK;
                let live = !expired && !version.holder.is_gone();
                if !version.hold.overlaps(&hold) {
                    continue;
                }
                if live {
                    return Ok(Look::Busy(busy(leases, other, &version, hold)));
                }
                let tombstone = Version {
                    state: State::Dead {
                        by: run_id.to_string(),
                    },
                    nonce: nonce(),
                    ..version.clone()
                };
                match leases.write(other.seq + 1, &tombstone).await? {
                    Wrote::Written => {
                        tracing::warn!(
                            lease = %leases.url(&other.meta.location),
                            "taking over the lease of run {} ({}), which {}",
                            version.run_id,
                            version.holder,
                            if expired { "stopped renewing it" } else { "no longer runs" }
                        );
                        dead.push(Dead {
                            run_id: version.run_id,
                            hold: version.hold,
                            seq: other.seq + 1,
                            ttl_ms: version.ttl_ms,
                        });
                    }
                    // it renewed at the last moment: it is alive
                    Wrote::Taken => return Ok(Look::Busy(busy(leases, other, &version, hold))),
                }
            }
        }
    }
    Ok(Look::Clear(dead))
}

fn busy(leases: &Leases, other: &Newest, version: &Version, hold: Hold) -> LakeError {
    let expires = other.meta.last_modified + version.ttl();
    LakeError::Busy {
        message: format!(
            "another {} run ({}, {}) holds {} until {} by the store's clock, which overlaps {hold} \
             that this run writes ({}); retry after it ends (a killed run's lease expires by \
             itself)",
            leases.job,
            version.run_id,
            version.holder,
            version.hold,
            expires.format("%H:%M:%S UTC"),
            leases.url(&other.meta.location)
        ),
    }
}

/// A lease that cannot be read counts as live and overlapping: the error says how to clear it.
fn unreadable(leases: &Leases, path: &Path, why: &str) -> LakeError {
    let url = leases.url(path);
    LakeError::Busy {
        message: format!(
            "the lease {url} cannot be read ({why}); it may be a newer version's, so it counts \
             as held. If no {} run is running, delete it (and the folder it is in) and retry",
            leases.job
        ),
    }
}

/// What the heartbeat writes, and where.
struct Renewal {
    leases: Leases,
    version: Version,
    seq: Arc<AtomicU64>,
    health: Arc<Health>,
}

impl Renewal {
    /// Writes version `seq`, if this run's newest version `seq - 1` is still there: a lease
    /// whose folder was removed (its run was fenced off long ago) is not taken back.
    async fn renew(&self, seq: u64) -> Result<Wrote> {
        let newest = self.leases.path(&self.version.run_id, seq - 1)?;
        match self.leases.folder.store().head(&newest).await {
            Ok(_) => self.leases.write(seq, &self.version).await,
            Err(object_store::Error::NotFound { .. }) => Ok(Wrote::Taken),
            Err(e) => Err(LakeError::store(self.leases.url(&newest))(e)),
        }
    }

    /// Renews the lease every third of its TTL from `start`, each attempt bounded to a sixth
    /// of it, until it finds the lease taken over.
    async fn on_schedule(mut self, start: Instant) {
        let ttl = self.health.ttl;
        let every = ttl / 3;
        let mut ticks = tokio::time::interval_at((start + every).into(), every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // when the first attempt with the current nonce started: a later attempt may find
        // that one's version written, which dates from then
        let mut first_attempt: Option<Duration> = None;
        loop {
            ticks.tick().await;
            let started = *first_attempt.get_or_insert_with(since_boot);
            let seq = self.seq.load(Ordering::SeqCst) + 1;
            // the nonce changes only once a version is written: an attempt whose answer was
            // lost is found as this run's own by the next one
            let renewed = tokio::time::timeout(ttl / 6, self.renew(seq));
            match renewed.await {
                Ok(Ok(Wrote::Written)) => {
                    if let Ok(mut at) = self.health.renewed.lock() {
                        *at = started;
                    }
                    first_attempt = None;
                    self.version.nonce = nonce();
                    self.seq.store(seq, Ordering::SeqCst);
                    self.leases.prune(&self.version.run_id, seq).await;
                }
                Ok(Ok(Wrote::Taken)) => {
                    self.health.lost.store(true, Ordering::SeqCst);
                    tracing::error!(
                        "the lease {} was taken over by another run (this run stalled for longer \
                         than its {} s TTL): this run stops before its next commit",
                        self.health.url,
                        ttl.as_secs()
                    );
                    return;
                }
                Ok(Err(e)) => tracing::warn!("could not renew the lease {}: {e}", self.health.url),
                Err(_) => tracing::warn!(
                    "renewing the lease {} took longer than {:.0} s; trying again at the next \
                     renewal",
                    self.health.url,
                    (ttl / 6).as_secs_f64()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(from: Option<&str>, to: Option<&str>) -> Hold {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        Hold::Days {
            from: from.and_then(d),
            to: to.and_then(d),
        }
    }

    #[test]
    fn disjoint_ranges_and_shards_do_not_overlap_and_everything_overlaps_all() {
        let jan = days(Some("2009-01-01"), Some("2009-01-31"));
        let feb = days(Some("2009-02-01"), Some("2009-02-28"));
        let from_feb_15 = days(Some("2009-02-15"), None);
        let until_jan = days(None, Some("2009-01-31"));
        assert!(!jan.overlaps(&feb) && !feb.overlaps(&jan));
        assert!(feb.overlaps(&from_feb_15) && from_feb_15.overlaps(&feb));
        assert!(jan.overlaps(&until_jan) && !until_jan.overlaps(&from_feb_15));
        assert!(days(None, None).overlaps(&jan));
        for h in [jan, from_feb_15, Hold::Shard { index: 1, count: 4 }] {
            assert!(Hold::All.overlaps(&h) && h.overlaps(&Hold::All));
        }
        let shard = |index, count| Hold::Shard { index, count };
        assert!(!shard(0, 4).overlaps(&shard(3, 4)));
        assert!(shard(2, 4).overlaps(&shard(2, 4)));
        assert!(
            shard(0, 4).overlaps(&shard(0, 2)),
            "other counts split differently"
        );
        assert_eq!(jan.key(), "days.2009-01-01..2009-01-31");
        assert_eq!(from_feb_15.key(), "days.2009-02-15..");
        assert_eq!(shard(1, 4).key(), "shard.1.4");
        assert_eq!(Hold::All.key(), "all");
    }

    fn local(dir: &std::path::Path) -> Location {
        let url = url::Url::from_directory_path(dir).unwrap_or_else(|()| panic!("a path"));
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new());
        Location::with_store(url, store).unwrap_or_else(|e| panic!("{e}"))
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lease-{tag}-{}", nonce()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    const TTL: Duration = Duration::from_secs(6);

    #[tokio::test]
    async fn an_overlapping_run_is_refused_a_disjoint_one_proceeds_and_epochs_rise() {
        let dir = temp("overlap");
        let root = local(&dir);
        let a = Lease::acquire(&root, "silver", Hold::All, "run-a", TTL).await;
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        let b = Lease::acquire(
            &root,
            "silver",
            days(Some("2009-01-01"), None),
            "run-b",
            TTL,
        );
        match b.await {
            Err(LakeError::Busy { message }) => assert!(message.contains("run-a"), "{message}"),
            other => panic!("a second run proceeded: {other:?}"),
        }
        a.lease.release().await;
        let shard = |i| Hold::Shard { index: i, count: 2 };
        let c = Lease::acquire(&root, "silver", shard(0), "run-c", TTL).await;
        let d = Lease::acquire(&root, "silver", shard(1), "run-d", TTL).await;
        let (c, d) = (
            c.unwrap_or_else(|e| panic!("{e}")),
            d.unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(a.epoch < c.epoch && c.epoch < d.epoch, "epochs rise");
        c.lease.release().await;
        d.lease.release().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_lease_whose_process_is_gone_is_taken_over_and_its_holder_learns_it() {
        let dir = temp("takeover");
        let root = local(&dir);
        let a = Lease::acquire(&root, "bronze", Hold::All, "run-a", TTL).await;
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        // make run-a's newest version look like a finished process of this machine
        let leases = Leases::open(&root, "bronze").unwrap_or_else(|e| panic!("{e}"));
        let seq = a.lease.seq.load(Ordering::SeqCst);
        let path = leases.path("run-a", seq).unwrap_or_else(|e| panic!("{e}"));
        let mut version = leases.read(&path).await.ok().and_then(Result::ok);
        let version = version.as_mut().unwrap_or_else(|| panic!("run-a's lease"));
        version.holder.started = version.holder.started.map(|s| s + 1);
        let body = serde_json::to_vec(&version).unwrap_or_default();
        let store = root.store();
        store
            .put(&path, body.into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let b = Lease::acquire(&root, "bronze", Hold::All, "run-b", TTL).await;
        let b = b.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.dead.len(), 1, "run-a is to be fenced off");
        assert!(b.epoch > a.epoch);
        // run-a's next renewal finds its lease taken over
        tokio::time::sleep(TTL / 3 + Duration::from_millis(500)).await;
        let problem = a.lease.health().problem().unwrap_or_default();
        assert!(problem.contains("taken over"), "{problem}");
        b.lease.fenced(&b.dead).await;
        a.lease.release().await;
        // a later run finds run-a fenced: nothing left to fence
        b.lease.release().await;
        let c = Lease::acquire(&root, "bronze", Hold::All, "run-c", TTL).await;
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert!(c.dead.is_empty(), "{:?}", c.dead);
        c.lease.release().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_holder_that_renewed_since_the_listing_is_read_at_its_new_version_not_taken_for_gone()
    {
        let dir = temp("renewed");
        let root = local(&dir);
        let a = Lease::acquire(&root, "silver", Hold::All, "run-a", TTL).await;
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        let leases = Leases::open(&root, "silver").unwrap_or_else(|e| panic!("{e}"));
        let (listed, _) = leases.list().await.unwrap_or_else(|e| panic!("{e}"));
        let listed = listed.into_iter().find(|n| n.run_id == "run-a");
        let listed = listed.unwrap_or_else(|| panic!("run-a listed"));
        // run-a renews, and prunes the version the listing saw
        tokio::time::sleep(TTL / 3 + Duration::from_millis(500)).await;
        let found = leases
            .newest_of(&listed)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (newest, version) = found.unwrap_or_else(|| panic!("run-a's lease was taken for gone"));
        assert!(newest.seq > listed.seq, "read at its new version");
        assert!(version.is_ok_and(|v| v.state == State::Held));
        a.lease.release().await;
        let released = leases
            .newest_of(&newest)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(released.is_none(), "a released lease is gone");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_lease_that_cannot_be_read_counts_as_held_and_the_error_says_how_to_clear_it() {
        let dir = temp("unreadable");
        let root = local(&dir);
        let newer = dir.join("_leases/gold/run-x");
        std::fs::create_dir_all(&newer).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            newer.join("000001.json"),
            r#"{"run_id":"run-x","hold":{"kind":"weeks","from":"2009-W01"},"ttl_ms":1}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let refused = Lease::acquire(&root, "gold", Hold::All, "run-y", TTL).await;
        match refused {
            Err(LakeError::Busy { message }) => {
                assert!(message.contains("cannot be read"), "{message}");
                assert!(message.contains("delete it"), "{message}");
            }
            other => panic!("an unreadable lease was not counted as held: {other:?}"),
        }
        assert!(newer.join("000001.json").exists(), "never deleted");
        let _ = std::fs::remove_dir_all(dir);
    }
}
