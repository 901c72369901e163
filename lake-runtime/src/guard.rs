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
//! Besides, once the lease has a problem (lost, or not renewed for most of its TTL) the lake's
//! store refuses every write that would make something visible (a commit, a claim, a plan, a
//! deliverable; not a data file no commit names yet, nor the lease's own): such a run stops at its
//! next commit with exit 4, even inside deltalake's own writes ([`Guarded`]).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
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
/// sound ([`Guarded::makes_visible`]); a multipart upload is checked as it starts and again as it
/// completes (the moment its object appears).
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn ObjectStore>,
    guard: Arc<Guard>,
    /// The lake's `_leases` folder.
    leases: Path,
}

impl Guarded {
    /// `inner` guarded by `guard`; `leases` is the lake's `_leases` folder in `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, guard: Arc<Guard>, leases: Path) -> Self {
        Self {
            inner,
            guard,
            leases,
        }
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        if !self.makes_visible(location) {
            return Ok(());
        }
        refuse_if_unsound(&self.guard)
    }

    /// Whether a write to `location` can change what a reader sees: not a lease's (the run's
    /// own bookkeeping), not a table's data file (a reader sees it only once a commit names it;
    /// a stalled run's files stay orphans, uncommitted, that no reader lists). Letting a data
    /// file finish also spares deltalake's writer a failed upload it cannot abort cleanly.
    fn makes_visible(&self, location: &Path) -> bool {
        if location.prefix_matches(&self.leases) {
            return false;
        }
        location.parts().any(|part| part.as_ref() == "_delta_log")
            || !location.as_ref().ends_with(".parquet")
    }
}

fn refuse_if_unsound(guard: &Guard) -> object_store::Result<()> {
    match guard.problem() {
        None => Ok(()),
        Some(problem) => Err(object_store::Error::Generic {
            store: "lake",
            source: problem.into(),
        }),
    }
}

/// A guarded multipart upload: its object appears only if the lease is still sound when it
/// completes; otherwise the upload is aborted.
#[derive(Debug)]
struct GuardedUpload {
    inner: Box<dyn MultipartUpload>,
    guard: Arc<Guard>,
}

#[async_trait]
impl MultipartUpload for GuardedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        if let Err(refused) = refuse_if_unsound(&self.guard) {
            let _ = self.inner.abort().await;
            return Err(refused);
        }
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
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
        self.check(location)?;
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        if !self.makes_visible(location) {
            return Ok(upload);
        }
        Ok(Box::new(GuardedUpload {
            inner: upload,
            guard: self.guard.clone(),
        }))
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
    use std::time::Duration;

    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt as _, WriteMultipart};

    use super::*;
    use crate::lease::since_boot;

    /// A store of a lake at `root` (under a folder named `_leases`, which must not matter) and
    /// its guard, before any lease.
    fn guarded(root: &str) -> (Guarded, Arc<Guard>) {
        let guard = Arc::new(Guard::default());
        let store = Guarded::new(
            Arc::new(InMemory::new()),
            guard.clone(),
            Path::from(format!("{root}/_leases")),
        );
        (store, guard)
    }

    /// The run's lease: sound, or last renewed when the machine booted (long past its TTL).
    fn lease(guard: &Guard, sound: bool) {
        let renewed = if sound { since_boot() } else { Duration::ZERO };
        let health = Arc::new(Health::new("lease".into(), Duration::from_secs(3), renewed));
        guard.set(Some(Arc::new(Fence::new("gold", Hold::All, 2, health))));
    }

    #[tokio::test]
    async fn a_run_whose_lease_is_unsound_makes_nothing_visible_but_may_finish_data_files() {
        let root = "srv/_leases/lake";
        let (store, guard) = guarded(root);
        lease(&guard, false);
        for visible in [
            "silver/lastfm_listens/_delta_log/00000000000000000003.json",
            "silver/lastfm_listens/_delta_log/00000000000000000010.checkpoint.parquet",
            "meta/bronze_batches/7.json",
            "gold/lastfm/top_songs.tsv",
        ] {
            let path = Path::from(format!("{root}/{visible}"));
            assert!(store.put(&path, "x".into()).await.is_err(), "{visible}");
            assert!(store.put_multipart(&path).await.is_err(), "{visible}");
        }
        for invisible in [
            "silver/lastfm_listens/year=2009/month=5/part-00000-1f.c000.snappy.parquet",
            "_leases/gold/20261207T093048Z-8a95deee/000002.json",
        ] {
            let path = Path::from(format!("{root}/{invisible}"));
            assert!(store.put(&path, "x".into()).await.is_ok(), "{invisible}");
        }
    }

    #[tokio::test]
    async fn an_upload_begun_before_the_lease_failed_does_not_appear() {
        let (store, guard) = guarded("lake");
        lease(&guard, true);
        let path = Path::from("lake/gold/deezer/user_top50_20261206.txt");
        let mut upload = WriteMultipart::new(store.put_multipart(&path).await.unwrap());
        upload.write(b"user\tsong\n");
        lease(&guard, false);
        assert!(upload.finish().await.is_err());
        assert!(store.head(&path).await.is_err(), "the file must not appear");

        lease(&guard, true);
        let mut upload = WriteMultipart::new(store.put_multipart(&path).await.unwrap());
        upload.write(b"user\tsong\n");
        upload.finish().await.unwrap();
        assert!(store.head(&path).await.is_ok());
    }
}
