//! One run of a job at a time per lake: a lease object `<lake>/_leases/<job>.json`, taken with
//! an atomic create-if-absent (S3 conditional put, a hard link locally) and renewed by a
//! heartbeat. A second run started while the lease is held exits with [`crate::Exit::Busy`];
//! a lease whose holder stopped renewing it (a killed run) expires after its TTL and the next
//! run takes it over. A holder on the same host whose process is gone is taken over at once,
//! so that an orchestrator's retry after a crash does not wait out the TTL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{LakeError, Result};
use crate::store::Location;

/// How long a lease lives without a heartbeat; the heartbeat renews it every third of that.
pub const LEASE_TTL: Duration = Duration::from_secs(90);

#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    pid: u32,
    host: String,
    expires_at: DateTime<Utc>,
}

/// A held lease; [`Lease::release`] gives it back (a dropped lease expires after its TTL).
#[derive(Debug)]
pub struct Lease {
    folder: Location,
    path: Path,
    heartbeat: JoinHandle<()>,
}

fn host_name() -> String {
    std::env::var(crate::env::HOSTNAME)
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn holder(run_id: &str) -> Holder {
    Holder {
        run_id: run_id.to_string(),
        pid: std::process::id(),
        host: host_name(),
        expires_at: Utc::now() + LEASE_TTL,
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
}

fn payload(h: &Holder) -> PutPayload {
    PutPayload::from(Bytes::from(serde_json::to_vec(h).unwrap_or_default()))
}

impl Lease {
    /// Takes the lease of `job` on the lake whose root is `root`, or says who holds it.
    pub async fn acquire(root: &Location, job: &str, run_id: &str) -> Result<Lease> {
        let folder = root.child("_leases")?;
        let path = folder.file_path(&format!("{job}.json"));
        let url = folder.object_url(&path);
        let store = folder.store().clone();
        let create = PutOptions::from(PutMode::Create);
        let written = match store
            .put_opts(&path, payload(&holder(run_id)), create)
            .await
        {
            Ok(put) => put,
            Err(object_store::Error::AlreadyExists { .. }) => {
                take_over(&store, &path, &url, job, run_id).await?
            }
            Err(e) => return Err(LakeError::store(url)(e)),
        };
        let last = UpdateVersion {
            e_tag: written.e_tag,
            version: written.version,
        };
        let heartbeat = tokio::spawn(heartbeat(store, path.clone(), run_id.to_string(), last));
        Ok(Lease {
            folder,
            path,
            heartbeat,
        })
    }

    pub async fn release(self) {
        self.heartbeat.abort();
        if let Err(e) = self.folder.store().delete(&self.path).await {
            tracing::warn!("could not release the lease at {}: {e}", self.path);
        }
    }
}

/// The lease object exists: says who holds it while they still count (exit 4), else replaces
/// it, if no other run replaced it first.
async fn take_over(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    url: &str,
    job: &str,
    run_id: &str,
) -> Result<PutResult> {
    let got = store.get(path).await.map_err(LakeError::store(url))?;
    let current = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got.bytes().await.map_err(LakeError::store(url))?;
    let held: Option<Holder> = serde_json::from_slice(&bytes).ok();
    if let Some(h) = held.as_ref().filter(|h| h.is_live()) {
        return Err(LakeError::Busy {
            message: format!(
                "another {job} run ({}, pid {} on {}) holds {url} until {}; \
                 retry after it ends (a killed run's lease expires by itself)",
                h.run_id,
                h.pid,
                if h.host.is_empty() {
                    "an unnamed host"
                } else {
                    &h.host
                },
                h.expires_at.format("%H:%M:%S UTC")
            ),
        });
    }
    tracing::warn!(lease = %url, "taking over the lease of a run that stopped without releasing it");
    let update = PutOptions::from(PutMode::Update(current));
    let taken = match store.put_opts(path, payload(&holder(run_id)), update).await {
        Err(object_store::Error::NotImplemented { .. }) => {
            // local file systems have no compare-and-swap: remove, then create
            let _ = store.delete(path).await;
            let create = PutOptions::from(PutMode::Create);
            store.put_opts(path, payload(&holder(run_id)), create).await
        }
        other => other,
    };
    match taken {
        Ok(put) => Ok(put),
        Err(
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
        ) => Err(LakeError::Busy {
            message: format!("another {job} run took over {url} at the same moment; retry later"),
        }),
        Err(e) => Err(LakeError::store(url)(e)),
    }
}

/// Renews the lease every third of its TTL, as long as it is still the one this run wrote.
async fn heartbeat(
    store: Arc<dyn ObjectStore>,
    path: Path,
    run_id: String,
    mut last: UpdateVersion,
) {
    loop {
        tokio::time::sleep(LEASE_TTL / 3).await;
        let update = PutOptions::from(PutMode::Update(last.clone()));
        let renewed = match store
            .put_opts(&path, payload(&holder(&run_id)), update)
            .await
        {
            Err(object_store::Error::NotImplemented { .. }) => {
                store.put(&path, payload(&holder(&run_id))).await
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
            Err(object_store::Error::Precondition { .. }) => {
                tracing::error!(
                    "the lease at {path} was taken over by another run (this run stalled for \
                     longer than {} s); two runs may now write at the same time",
                    LEASE_TTL.as_secs()
                );
                return;
            }
            Err(e) => tracing::warn!("could not renew the lease at {path}: {e}"),
        }
    }
}
