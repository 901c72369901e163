//! Bronze fanned out: `--shard i/N` lands the landing objects whose stable hash falls in shard
//! i, so N runs land a landing zone together, each object exactly once.
//!
//! Concurrent runs must not share batch numbers, and each must know which claimed batches are
//! its own to finish after a crash. So a batch number is taken with an atomic create of
//! `<lake>/meta/bronze_batches/<batch>.json` (the next free number wins), which names the
//! *lane* that claimed it: `lake.bronze` for an unsharded run, `lake.bronze.shard.<i>.<N>` for
//! a shard. A lane is also the Delta transaction each bronze table records the batches of
//! that lane under, so a table knows, lane by lane, the newest batch it holds. Batches claimed
//! before this existed have no such object and belong to `lake.bronze`.

use std::collections::HashMap;

use bytes::Bytes;
use lake_runtime::functions::fnv1a;
use lake_runtime::{BRONZE_TXN, LakeError, Location, Part, Result, Run};
use object_store::{ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

/// The lane of a run: its batches' transaction id.
pub fn lane(shard: Option<Part>) -> String {
    match shard {
        None => BRONZE_TXN.to_string(),
        Some(p) => format!("{BRONZE_TXN}.shard.{}.{}", p.index, p.count),
    }
}

/// Whether the landing object `source/relative` belongs to `shard` (all do without one): by
/// FNV-1a 64 of its path below the landing root, which does not change between runs.
pub fn in_shard(source: &str, relative: &str, shard: Option<Part>) -> bool {
    let Some(p) = shard else { return true };
    let h = fnv1a(source.bytes().chain([b'/']).chain(relative.bytes()));
    h % u64::from(p.count) == u64::from(p.index)
}

#[derive(Debug, Serialize, Deserialize)]
struct BatchClaim {
    lane: String,
    source: String,
    run_id: String,
}

/// The batch numbers of a lake: taken atomically, with the lane that took each.
pub struct Batches {
    folder: Location,
    lanes: HashMap<i64, String>,
}

impl Batches {
    pub fn open(run: &Run) -> Result<Self> {
        Ok(Self {
            folder: run.lake.root().child("meta")?.child("bronze_batches")?,
            lanes: HashMap::new(),
        })
    }

    fn path(&self, batch: i64) -> object_store::path::Path {
        self.folder.file_path(&format!("{batch:012}.json"))
    }

    /// Takes the first free batch number after `last` for `lane`.
    pub async fn take(&mut self, last: i64, lane: &str, source: &str, run: &Run) -> Result<i64> {
        let claim = BatchClaim {
            lane: lane.to_string(),
            source: source.to_string(),
            run_id: run.id.clone(),
        };
        let body = Bytes::from(serde_json::to_vec(&claim).unwrap_or_default());
        let mut batch = last + 1;
        loop {
            let path = self.path(batch);
            let create = PutOptions::from(PutMode::Create);
            match self
                .folder
                .store()
                .put_opts(&path, body.clone().into(), create)
                .await
            {
                Ok(_) => {
                    self.lanes.insert(batch, lane.to_string());
                    return Ok(batch);
                }
                Err(object_store::Error::AlreadyExists { .. }) => batch += 1,
                Err(e) => return Err(LakeError::store(self.folder.object_url(&path))(e)),
            }
        }
    }

    /// The lane that claimed `batch`.
    pub async fn lane_of(&mut self, batch: i64) -> Result<String> {
        if let Some(lane) = self.lanes.get(&batch) {
            return Ok(lane.clone());
        }
        let path = self.path(batch);
        let url = self.folder.object_url(&path);
        let lane = match self.folder.store().get(&path).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(LakeError::store(&url))?;
                let claim: BatchClaim =
                    serde_json::from_slice(&bytes).map_err(|e| LakeError::Config {
                        message: format!(
                            "{url} is not a batch claim ({e}); it was written by bronze and \
                             must not be edited: restore it from the bucket's versions"
                        ),
                    })?;
                claim.lane
            }
            Err(object_store::Error::NotFound { .. }) => BRONZE_TXN.to_string(),
            Err(e) => return Err(LakeError::store(url)(e)),
        };
        self.lanes.insert(batch, lane.clone());
        Ok(lane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_falls_in_exactly_one_shard_and_shards_are_about_even() {
        let part = |index| Some(Part { index, count: 4 });
        let mut sizes = [0; 4];
        for n in 0..4000 {
            let rel = format!("userid-timestamp-artid-artname-traid-traname.{n}.tsv");
            let owners: Vec<u32> = (0..4)
                .filter(|&i| in_shard("lastfm", &rel, part(i)))
                .collect();
            assert_eq!(owners.len(), 1, "{rel}: {owners:?}");
            sizes[owners[0] as usize] += 1;
            assert!(in_shard("lastfm", &rel, None));
        }
        assert!(sizes.iter().all(|&s| (800..1200).contains(&s)), "{sizes:?}");
        assert_eq!(lane(None), "lake.bronze");
        assert_eq!(lane(part(2)), "lake.bronze.shard.2.4");
    }
}
