//! Fencing: every commit a run makes proves that the run still holds its lease.
//!
//! A run holds an epoch from its lease ([`crate::lease`]) and a *fence*: the Delta application
//! transaction `lake.fence.<job>.<hold key>` (`lake.fence.bronze.all`, `…silver.shard.1.4`).
//! Every commit of the run carries the fence at its epoch, and is refused when the snapshot it
//! is built on holds the fence at a higher epoch ([`crate::Lake::write`]). A run that takes over
//! a dead run's lease first commits the dead run's fence at its own, higher, epoch into every
//! table of the job, before it reads any of them ([`crate::Lake::fence_off`]). So the dead run,
//! should it wake up, finds the higher epoch in any snapshot it builds a commit on; and a commit
//! it had built on an older snapshot conflicts with the takeover's (Delta's commit check fails a
//! commit whose application transaction a concurrent commit changed). Runs on disjoint holds
//! have fences of their own and never conflict.
//!
//! Besides, the lake's store refuses every write but the lease's own once the lease has a
//! problem (lost, or not renewed for most of its TTL): such a run stops at its next commit with
//! exit 4, even inside deltalake's own writes ([`Guarded`]).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

use crate::lease::{Health, Hold};

/// The fence of a run: its transaction id, its epoch, and how its lease is doing.
#[derive(Debug)]
pub struct Fence {
    pub app_id: String,
    pub epoch: i64,
    pub health: Arc<Health>,
}

impl Fence {
    pub fn new(job: &str, hold: Hold, epoch: u64, health: Arc<Health>) -> Self {
        Self {
            app_id: app_id(job, hold),
            epoch: i64::try_from(epoch).unwrap_or(i64::MAX),
            health,
        }
    }
}

/// The fence's transaction id of a run of `job` holding `hold`.
pub fn app_id(job: &str, hold: Hold) -> String {
    format!("lake.fence.{job}.{}", hold.key())
}

/// The lake's current fence: none outside a run (`lake sql`) and after a run released its
/// lease. Shared by the lake's clones and its store.
#[derive(Debug, Default)]
pub struct Guard(RwLock<Option<Arc<Fence>>>);

impl Guard {
    pub fn set(&self, fence: Option<Arc<Fence>>) {
        if let Ok(mut slot) = self.0.write() {
            *slot = fence;
        }
    }

    pub fn fence(&self) -> Option<Arc<Fence>> {
        self.0.read().ok().and_then(|f| f.clone())
    }

    /// Why the run must not write any more, if it must not.
    pub fn problem(&self) -> Option<String> {
        self.fence().and_then(|f| f.health.problem())
    }
}

/// The lake's store: writes that make something visible pass only while the run's lease is
/// sound ([`makes_visible`]).
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn ObjectStore>,
    guard: Arc<Guard>,
}

impl Guarded {
    pub fn new(inner: Arc<dyn ObjectStore>, guard: Arc<Guard>) -> Self {
        Self { inner, guard }
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        if !makes_visible(location) {
            return Ok(());
        }
        match self.guard.problem() {
            None => Ok(()),
            Some(problem) => Err(object_store::Error::Generic {
                store: "lake",
                source: problem.into(),
            }),
        }
    }
}

/// Whether a write to `location` can change what a reader sees: not a lease's (the run's own
/// bookkeeping), not a table's data file (a reader sees it only once a commit names it; a
/// stalled run's files stay orphans that `lake vacuum` removes). Letting a data file finish also
/// spares deltalake's writer a failed upload it cannot abort cleanly.
fn makes_visible(location: &Path) -> bool {
    let parts: Vec<&str> = location.as_ref().split('/').collect();
    if parts.contains(&"_leases") {
        return false;
    }
    parts.contains(&"_delta_log") || !location.as_ref().ends_with(".parquet")
}

impl fmt::Display for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guarded({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Guarded {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_claims_and_deliverables_make_things_visible_data_files_and_leases_do_not() {
        for visible in [
            "silver/lastfm_listens/_delta_log/00000000000000000003.json",
            "silver/lastfm_listens/_delta_log/00000000000000000010.checkpoint.parquet",
            "meta/bronze_batches/7.json",
            "gold/lastfm/top_songs.tsv",
        ] {
            assert!(makes_visible(&Path::from(visible)), "{visible}");
        }
        for invisible in [
            "silver/lastfm_listens/year=2009/month=5/part-00000-1f.c000.snappy.parquet",
            "_leases/silver/20261207T093048Z-8a95deee/000002.json",
        ] {
            assert!(!makes_visible(&Path::from(invisible)), "{invisible}");
        }
    }
}
