//! The bronze batches of a lake: which numbers are claimed, by which lane, and which are
//! complete. What every layer above bronze may take in follows from it.
//!
//! A bronze run takes a batch number with an atomic create of
//! `<lake>/meta/bronze_batches/<batch>.json` (the first free number after the newest it knows
//! of), which names the source and the *lane* that claimed it: `lake.bronze` for a plain run,
//! `lake.bronze.shard.<i>.<N>` for a shard. Each bronze table records, as the Delta transaction
//! of the lane, the newest batch of that lane it holds, and a lane lands its batches in order; so
//! batch b of lane L is **complete** when every table of its source holds L at b or later.
//! Batches claimed before these objects existed have none and belong to `lake.bronze`.
//!
//! Batches complete out of number order: the tables of one batch commit one after another,
//! shards take numbers at the same time, a crashed run's batch waits for whoever finishes it. A
//! consumer therefore takes in only the batches up to its **mark** ([`Registry::mark`]): the
//! highest number at or below which every claimed batch of the source is complete. Numbers are
//! taken in order (a run starts after the newest claim it knows of and skips the taken ones), so
//! no batch is ever claimed below one already claimed, and none can appear below a mark later.
//!
//! `_complete.json` notes a floor at or below which every claim is complete (bronze raises it
//! after each run); listings start there, so a run reads only the claims since.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::store::Location;
use crate::write::BRONZE_TXN;

/// What a batch's claim object says.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    lane: String,
    source: String,
    run_id: String,
}

/// A claimed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub batch: i64,
    pub lane: String,
    pub source: String,
    pub run_id: String,
    pub claimed_at: DateTime<Utc>,
}

/// A claim as a listing finds it: readable, or not (an unreadable claim could belong to any
/// source, so it holds every mark back).
#[derive(Debug, Clone)]
pub enum Listed {
    Claim(Claim),
    Unreadable {
        batch: i64,
        url: String,
        why: String,
    },
}

impl Listed {
    pub fn batch(&self) -> i64 {
        match self {
            Listed::Claim(c) => c.batch,
            Listed::Unreadable { batch, .. } => *batch,
        }
    }
}

/// The batch numbers of a lake.
#[derive(Debug, Clone)]
pub struct Registry {
    folder: Location,
}

/// The floor note: every claim at or below `through` is complete.
#[derive(Debug, Serialize, Deserialize)]
struct Floor {
    through: i64,
}

const FLOOR_FILE: &str = "_complete.json";

impl Registry {
    pub fn of(lake: &Lake) -> Result<Self> {
        Ok(Self {
            folder: lake.root().child("meta")?.child("bronze_batches")?,
        })
    }

    fn name(batch: i64) -> String {
        format!("{batch:012}.json")
    }

    /// Takes the first free batch number after `after` for `lane` of `source`.
    pub async fn take(&self, after: i64, lane: &str, source: &str, run_id: &str) -> Result<i64> {
        let body = Body {
            lane: lane.to_string(),
            source: source.to_string(),
            run_id: run_id.to_string(),
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let mut batch = after + 1;
        loop {
            let path = self.folder.file_path(&Self::name(batch));
            let create = PutOptions::from(PutMode::Create);
            match self
                .folder
                .store()
                .put_opts(&path, body.clone().into(), create)
                .await
            {
                Ok(_) => return Ok(batch),
                Err(object_store::Error::AlreadyExists { .. }) => batch += 1,
                Err(e) => return Err(LakeError::store(self.folder.object_url(&path))(e)),
            }
        }
    }

    /// The floor: every claim at or below it is complete (0 when none is noted).
    pub async fn floor(&self) -> Result<i64> {
        let path = self.folder.file_path(FLOOR_FILE);
        match self.folder.store().get(&path).await {
            Ok(got) => {
                let url = self.folder.object_url(&path);
                let bytes = got.bytes().await.map_err(LakeError::store(url))?;
                // an unreadable note only costs a longer listing
                Ok(serde_json::from_slice::<Floor>(&bytes).map_or(0, |f| f.through.max(0)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(0),
            Err(e) => Err(LakeError::store(self.folder.object_url(&path))(e)),
        }
    }

    /// Notes `through` as the floor (a later, higher note replaces it; a lower one is harmless).
    pub async fn raise_floor(&self, through: i64) -> Result<()> {
        let body = serde_json::to_vec(&Floor { through }).unwrap_or_default();
        self.folder.put_file(FLOOR_FILE, Bytes::from(body)).await?;
        Ok(())
    }

    /// The claims of numbers above `floor`, in number order.
    pub async fn since(&self, floor: i64) -> Result<Vec<Listed>> {
        let objects = self.folder.list_after(&Self::name(floor)).await?;
        let numbered: Vec<(i64, ObjectMeta)> = objects
            .into_iter()
            .filter_map(|m| {
                let name = self.folder.relative(&m.location);
                let batch = name.strip_suffix(".json")?.parse::<i64>().ok()?;
                (batch > floor).then_some((batch, m))
            })
            .collect();
        futures::stream::iter(numbered)
            .map(|(batch, meta)| self.read(batch, meta))
            .buffered(16)
            .try_collect()
            .await
    }

    async fn read(&self, batch: i64, meta: ObjectMeta) -> Result<Listed> {
        let url = self.folder.object_url(&meta.location);
        let bytes = self
            .folder
            .store()
            .get(&meta.location)
            .await
            .map_err(LakeError::store(&url))?
            .bytes()
            .await
            .map_err(LakeError::store(&url))?;
        Ok(match serde_json::from_slice::<Body>(&bytes) {
            Ok(body) => Listed::Claim(Claim {
                batch,
                lane: body.lane,
                source: body.source,
                run_id: body.run_id,
                claimed_at: meta.last_modified,
            }),
            Err(e) => Listed::Unreadable {
                batch,
                url,
                why: e.to_string(),
            },
        })
    }
}

/// Where the consumption mark of `source` stands, from the claims `listed` above `floor` (every
/// claim at or below it is complete) and the lane marks of the source's tables: the highest
/// number at or below which every claimed batch of the source is complete; never below
/// `at_least` when nothing holds it back (the newest batch a table holds, for lakes older than
/// the registry).
pub async fn mark(
    listed: &[Listed],
    source: &str,
    marks: &mut LaneMarks,
    floor: i64,
    at_least: i64,
) -> Result<Mark> {
    for claim in listed {
        let held_back = match claim {
            Listed::Claim(c) if c.source != source => continue,
            Listed::Claim(c) => {
                let lacking = marks.lacking(&c.lane, c.batch).await?;
                if lacking.is_empty() {
                    continue;
                }
                HeldBack::Incomplete {
                    claim: c.clone(),
                    lacking,
                }
            }
            Listed::Unreadable { batch, url, why } => HeldBack::Unreadable {
                batch: *batch,
                url: url.clone(),
                why: why.clone(),
            },
        };
        return Ok(Mark {
            through: held_back.batch() - 1,
            held_back: Some(held_back),
        });
    }
    let newest = listed.iter().map(Listed::batch).max().unwrap_or(floor);
    Ok(Mark {
        through: newest.max(at_least).max(floor),
        held_back: None,
    })
}

/// What a consumer may take in of a source: every batch up to `through`.
#[derive(Debug, Clone)]
pub struct Mark {
    pub through: i64,
    /// The first batch that is not complete, when one holds the mark back.
    pub held_back: Option<HeldBack>,
}

/// Why a mark stops where it does.
#[derive(Debug, Clone)]
pub enum HeldBack {
    /// A claimed batch some tables do not hold yet.
    Incomplete { claim: Claim, lacking: Vec<String> },
    /// A claim that cannot be read.
    Unreadable {
        batch: i64,
        url: String,
        why: String,
    },
}

impl HeldBack {
    pub fn batch(&self) -> i64 {
        match self {
            HeldBack::Incomplete { claim, .. } => claim.batch,
            HeldBack::Unreadable { batch, .. } => *batch,
        }
    }

    /// For the run record.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            HeldBack::Incomplete { claim, lacking } => serde_json::json!({
                "batch": claim.batch,
                "lane": claim.lane,
                "claimed_by": claim.run_id,
                "claimed_at": claim.claimed_at.to_rfc3339(),
                "tables_lacking_it": lacking,
            }),
            HeldBack::Unreadable { batch, url, why } => serde_json::json!({
                "batch": batch,
                "unreadable_claim": url,
                "why": why,
            }),
        }
    }
}

impl std::fmt::Display for HeldBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeldBack::Incomplete { claim, lacking } => write!(
                f,
                "bronze batch {} (lane {}, claimed by run {} at {}) is not complete: {} lack it. \
                 A bronze run finishes it (a plain run, or the shard of that lane)",
                claim.batch,
                claim.lane,
                claim.run_id,
                claim.claimed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                lacking.join(", ")
            ),
            HeldBack::Unreadable { batch, url, why } => write!(
                f,
                "the claim of bronze batch {batch} ({url}) cannot be read ({why}): it was written \
                 by bronze and must not be edited; restore it from the bucket's versions"
            ),
        }
    }
}

/// The lane marks of a source's bronze tables, as loaded (a pinned snapshot, or the latest):
/// the newest batch of each lane each table holds.
pub struct LaneMarks {
    tables: Vec<(String, Option<DeltaTable>)>,
    held: HashMap<(usize, String), i64>,
}

impl LaneMarks {
    /// The tables by qualified name, each `None` when it was never written.
    pub fn new(tables: Vec<(String, Option<DeltaTable>)>) -> Self {
        Self {
            tables,
            held: HashMap::new(),
        }
    }

    /// The newest batch of `lane` that table `i` holds (-1: none).
    async fn held(&mut self, i: usize, lane: &str) -> Result<i64> {
        if let Some(held) = self.held.get(&(i, lane.to_string())) {
            return Ok(*held);
        }
        let (name, table) = &self.tables[i];
        let held = match table {
            None => -1,
            Some(t) => t
                .snapshot()
                .map_err(LakeError::delta(name))?
                .transaction_version(t.log_store().as_ref(), lane)
                .await
                .map_err(LakeError::delta(name))?
                .unwrap_or(-1),
        };
        self.held.insert((i, lane.to_string()), held);
        Ok(held)
    }

    /// The tables that do not hold batch `batch` of `lane`.
    pub async fn lacking(&mut self, lane: &str, batch: i64) -> Result<Vec<String>> {
        let mut lacking = Vec::new();
        for i in 0..self.tables.len() {
            if self.held(i, lane).await? < batch {
                lacking.push(self.tables[i].0.clone());
            }
        }
        Ok(lacking)
    }

    /// Notes that `table` now holds `batch` of `lane` (a commit just recorded it).
    pub fn note(&mut self, table: &str, lane: &str, batch: i64) {
        if let Some(i) = self.tables.iter().position(|(n, _)| n == table) {
            self.held.insert((i, lane.to_string()), batch);
        }
    }
}

/// The lane of a bronze run: its batches' transaction id.
pub fn lane(shard: Option<crate::scope::Part>) -> String {
    match shard {
        None => BRONZE_TXN.to_string(),
        Some(p) => format!("{BRONZE_TXN}.shard.{}.{}", p.index, p.count),
    }
}
