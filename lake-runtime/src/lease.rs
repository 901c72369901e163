//! Runs of a job exclude each other where they write the same part of the lake, and only there.
//!
//! A run holds a lease object `<lake>/_leases/<job>/<run id>.json` that says what it writes (a
//! [`Hold`]: everything, a range of days, a shard of the landing objects) and is renewed by a
//! heartbeat. Taking a lease is *write, then look*: the run creates its own object, then lists
//! the job's folder; if any other live lease overlaps its hold, it removes its own, and after a
//! few attempts a random pause apart exits with [`crate::Exit::Busy`]. Of two overlapping runs,
//! each writes before it looks, so the one that looks last sees the other: they never both
//! proceed; two that start together and both step back try again at different moments, so one
//! of them goes ahead. Runs on disjoint ranges or shards proceed together.
//!
//! A lease whose holder stopped renewing it (a killed run) expires after its TTL; a holder on
//! the same host whose process is gone stops counting at once, so that an orchestrator's retry
//! after a crash does not wait out the TTL. Either is removed by the next run that finds it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::env::host_name;
use crate::error::{LakeError, Result};
use crate::store::Location;

/// How long a lease lives without a heartbeat; the heartbeat renews it every third of that.
pub const LEASE_TTL: Duration = Duration::from_secs(90);

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

#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    pid: u32,
    host: String,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    hold: Hold,
}

/// A held lease; [`Lease::release`] gives it back (a dropped lease expires after its TTL).
#[derive(Debug)]
pub struct Lease {
    folder: Location,
    path: Path,
    heartbeat: JoinHandle<()>,
}

fn holder(run_id: &str, hold: Hold) -> Holder {
    Holder {
        run_id: run_id.to_string(),
        pid: std::process::id(),
        host: host_name(),
        expires_at: Utc::now() + LEASE_TTL,
        hold,
    }
}

impl Holder {
    /// Whether the holder still counts: its lease has not expired, and it is not a process of
    /// this host that no longer exists (where `/proc` can tell).
    fn is_live(&self) -> bool {
        if self.expires_at <= Utc::now() {
            return false;
        }
        let proc = std::path::Path::new("/proc");
        let same_host = !self.host.is_empty() && self.host == host_name();
        !(same_host && proc.join("self").exists() && !proc.join(self.pid.to_string()).exists())
    }

    fn describe(&self, job: &str) -> String {
        let host = if self.host.is_empty() {
            "an unnamed host"
        } else {
            &self.host
        };
        format!(
            "another {job} run ({}, pid {} on {host}) holds {} until {}",
            self.run_id,
            self.pid,
            self.hold,
            self.expires_at.format("%H:%M:%S UTC")
        )
    }
}

fn payload(h: &Holder) -> PutPayload {
    PutPayload::from(Bytes::from(serde_json::to_vec(h).unwrap_or_default()))
}

impl Lease {
    /// Takes a lease of `job` on the lake whose root is `root` for what `hold` writes, or says
    /// which run holds an overlapping one (exit 4).
    pub async fn acquire(root: &Location, job: &str, hold: Hold, run_id: &str) -> Result<Lease> {
        let folder = root.child("_leases")?.child(job)?;
        let path = folder.file_path(&format!("{run_id}.json"));
        let store = folder.store().clone();
        let url = folder.object_url(&path);
        let mut attempt = 0;
        let written = loop {
            let create = PutOptions::from(PutMode::Create);
            let written = store
                .put_opts(&path, payload(&holder(run_id, hold)), create)
                .await
                .map_err(LakeError::store(&url))?;
            match look_for_overlaps(&folder, &path, job, hold).await {
                Ok(()) => break written,
                Err(busy) => {
                    let _ = store.delete(&path).await;
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(busy);
                    }
                    // two runs that started together both step back: a random pause makes one
                    // of them look again first, and find the way clear
                    tokio::time::sleep(jitter(run_id, attempt)).await;
                }
            }
        };
        let last = UpdateVersion {
            e_tag: written.e_tag,
            version: written.version,
        };
        let renew = Renewal {
            store,
            path: path.clone(),
            run_id: run_id.to_string(),
            hold,
        };
        let heartbeat = tokio::spawn(renew.every_third_of_ttl(last));
        tracing::info!(lease = %url, "lease taken: this run writes {hold}");
        Ok(Lease {
            folder,
            path,
            heartbeat,
        })
    }

    pub async fn release(self) {
        self.heartbeat.abort();
        match self.folder.store().delete(&self.path).await {
            Ok(()) => tracing::info!("lease released"),
            Err(e) => tracing::warn!("could not release the lease at {}: {e}", self.path),
        }
    }
}

/// Times a run writes its lease and looks for overlapping ones before it gives up (exit 4).
const ATTEMPTS: u32 = 3;

/// A pause of 0.2 to 1.2 s, different for each run and attempt.
fn jitter(run_id: &str, attempt: u32) -> Duration {
    let h = crate::functions::fnv1a(run_id.bytes().chain(attempt.to_le_bytes()));
    Duration::from_millis(200 + h % 1000)
}

/// The other leases of the job's folder: an error naming a live one that overlaps `hold`;
/// leases of runs that stopped without releasing them are removed on the way.
async fn look_for_overlaps(folder: &Location, mine: &Path, job: &str, hold: Hold) -> Result<()> {
    let store = folder.store();
    for meta in folder.list().await? {
        if &meta.location == mine {
            continue;
        }
        let url = folder.object_url(&meta.location);
        let bytes = match store.get(&meta.location).await {
            Ok(got) => got.bytes().await.map_err(LakeError::store(&url))?,
            // released meanwhile
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(LakeError::store(&url)(e)),
        };
        let held: Option<Holder> = serde_json::from_slice(&bytes).ok();
        match held {
            Some(h) if h.is_live() => {
                if h.hold.overlaps(&hold) {
                    return Err(LakeError::Busy {
                        message: format!(
                            "{}, which overlaps {hold} that this run writes ({url}); \
                             retry after it ends (a killed run's lease expires by itself)",
                            h.describe(job)
                        ),
                    });
                }
            }
            _ => {
                tracing::warn!(lease = %url, "taking over the lease of a run that stopped without releasing it");
                let _ = store.delete(&meta.location).await;
            }
        }
    }
    Ok(())
}

/// What the heartbeat writes, and where.
struct Renewal {
    store: Arc<dyn ObjectStore>,
    path: Path,
    run_id: String,
    hold: Hold,
}

impl Renewal {
    /// Renews the lease every third of its TTL, as long as it is still the one this run wrote.
    async fn every_third_of_ttl(self, mut last: UpdateVersion) {
        loop {
            tokio::time::sleep(LEASE_TTL / 3).await;
            let body = || payload(&holder(&self.run_id, self.hold));
            let update = PutOptions::from(PutMode::Update(last.clone()));
            let renewed = match self.store.put_opts(&self.path, body(), update).await {
                Err(object_store::Error::NotImplemented { .. }) => {
                    self.store.put(&self.path, body()).await
                }
                other => other,
            };
            match renewed {
                Ok(put) => {
                    last = UpdateVersion {
                        e_tag: put.e_tag,
                        version: put.version,
                    }
                }
                Err(
                    object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
                ) => {
                    tracing::error!(
                        "the lease at {} was removed by another run (this run stalled for \
                         longer than {} s); two runs may now write at the same time",
                        self.path,
                        LEASE_TTL.as_secs()
                    );
                    return;
                }
                Err(e) => tracing::warn!("could not renew the lease at {}: {e}", self.path),
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
    }
}
