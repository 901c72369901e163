//! What bronze has claimed: every landing object claimed in `meta.landed_objects`, with the batch,
//! size and ETag it had, and the batch numbers of the lake's registry with the lane of each
//! ([`lake_runtime::batches`]). A claim is made before any row of its batch is written, so a
//! batch some table lacks is unfinished, and a run finishes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::{SessionContext, col};
use lake_runtime::batches::Listed;
use lake_runtime::{
    BRONZE_TXN, LakeError, Location, Registry, Result, Run, WriteMode, Written, int64_column,
    text_column,
};
use lake_schema::META_LANDED_OBJECTS;
use object_store::ObjectMeta;

/// An object as a claim recorded it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub object: String,
    pub source: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub batch: i64,
}

/// A claimed batch: its number and lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub number: i64,
    pub lane: String,
}

/// Everything claimed so far.
pub struct Claims {
    /// The latest claim of each object, by URL.
    pub latest: HashMap<String, Claimed>,
    /// The objects of each batch.
    pub batches: BTreeMap<i64, Vec<Claimed>>,
    /// The newest batch number `meta.landed_objects` holds.
    pub last_batch: i64,
    /// The registry's batches above its floor (every batch at or below it is complete).
    pub registered: Vec<Listed>,
    pub floor: i64,
}

impl Claims {
    /// Reads `meta.landed_objects`, then the registry's claims above its floor: every batch the
    /// first holds was registered before, so the second names its lane.
    pub async fn read(run: &Run, ctx: &SessionContext, registry: &Registry) -> Result<Self> {
        let landed = landed_objects(run, ctx).await?;
        let floor = registry.floor().await?;
        let registered = registry.since(floor).await?;
        let mut claims = Claims {
            latest: HashMap::new(),
            batches: BTreeMap::new(),
            last_batch: 0,
            registered,
            floor,
        };
        for claimed in landed {
            claims.note(claimed);
        }
        Ok(claims)
    }

    fn note(&mut self, claimed: Claimed) {
        self.last_batch = self.last_batch.max(claimed.batch);
        self.batches
            .entry(claimed.batch)
            .or_default()
            .push(claimed.clone());
        self.latest.insert(claimed.object.clone(), claimed);
    }

    /// The claimed batches of `source` above the floor, in number order, with their lanes; a
    /// claimed batch with no registry entry is from before the registry, of `lake.bronze`.
    /// A registry entry that cannot be read fails the run: bronze wrote it, and its lane is
    /// needed to finish it.
    pub fn batches_of(&self, source: &str) -> Result<Vec<Batch>> {
        let mut out = BTreeMap::new();
        for listed in &self.registered {
            match listed {
                Listed::Claim(c) if c.source == source => {
                    out.insert(c.batch, c.lane.clone());
                }
                Listed::Claim(_) => {}
                Listed::Unreadable { url, why, .. } => {
                    return Err(LakeError::Config {
                        message: format!(
                            "{url} is not a batch claim ({why}); it was written by bronze and \
                             must not be edited: restore it from the bucket's versions"
                        ),
                    });
                }
            }
        }
        let registered: Vec<i64> = self.registered.iter().map(Listed::batch).collect();
        for (batch, objects) in self.batches.range(self.floor + 1..) {
            let of_source = objects.iter().any(|o| o.source == source);
            if of_source && !registered.contains(batch) {
                out.insert(*batch, BRONZE_TXN.to_string());
            }
        }
        Ok(out
            .into_iter()
            .map(|(number, lane)| Batch { number, lane })
            .collect())
    }

    /// The objects claimed in `batch`, sorted by URL.
    pub fn objects_of(&self, batch: i64) -> Vec<Claimed> {
        let mut objects = self.batches.get(&batch).cloned().unwrap_or_default();
        objects.sort_by(|a, b| a.object.cmp(&b.object));
        objects
    }

    /// Notes a claim this run just made.
    pub fn claimed(&mut self, source: &str, batch: i64, objects: &[ObjectMeta], folder: &Location) {
        for meta in objects {
            self.note(Claimed {
                object: folder.object_url(&meta.location),
                source: source.to_string(),
                size: meta.size,
                e_tag: meta.e_tag.clone(),
                batch,
            });
        }
    }
}

/// Every row of `meta.landed_objects`, in batch order.
async fn landed_objects(run: &Run, ctx: &SessionContext) -> Result<Vec<Claimed>> {
    let def = &META_LANDED_OBJECTS;
    run.lake.register(ctx, def).await?;
    let err = LakeError::query("reading meta.landed_objects");
    let batches = ctx
        .table(def.qualified_name())
        .await
        .and_then(|df| df.sort(vec![col("batch").sort(true, false)]))
        .map_err(&err)?
        .collect()
        .await
        .map_err(&err)?;
    let bad = |e: datafusion::arrow::error::ArrowError| err(e.into());
    let mut out = Vec::new();
    for b in batches {
        let (source, object, size, e_tag, batch) = (
            text_column(&b, "source").map_err(bad)?,
            text_column(&b, "object").map_err(bad)?,
            int64_column(&b, "size").map_err(bad)?,
            text_column(&b, "e_tag").map_err(bad)?,
            int64_column(&b, "batch").map_err(bad)?,
        );
        for i in 0..b.num_rows() {
            out.push(Claimed {
                object: object.value(i).to_string(),
                source: source.value(i).to_string(),
                size: size.value(i).max(0) as u64,
                e_tag: (!e_tag.is_null(i)).then(|| e_tag.value(i).to_string()),
                batch: batch.value(i),
            });
        }
    }
    Ok(out)
}

/// Claims `todo` as batch `batch` in `meta.landed_objects`, before any of its rows is written.
pub async fn record_claim(
    run: &Run,
    ctx: &SessionContext,
    source: &str,
    batch: i64,
    todo: &[ObjectMeta],
    folder: &Location,
) -> Result<Written> {
    let def = &META_LANDED_OBJECTS;
    let n = todo.len();
    let col = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let batch = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            col(vec![Some(source.to_string()); n]),
            col(todo
                .iter()
                .map(|m| Some(folder.object_url(&m.location)))
                .collect()),
            ints(todo.iter().map(|m| m.size as i64).collect()),
            col(todo.iter().map(|m| m.e_tag.clone()).collect()),
            ints(vec![batch; n]),
            col(vec![Some(run.id.clone()); n]),
            Arc::new(
                TimestampMicrosecondArray::from(vec![run.started_micros(); n]).with_timezone("UTC"),
            ),
        ],
    )
    .map_err(|e| LakeError::query("meta.landed_objects")(e.into()))?;
    let df = ctx
        .read_batch(batch)
        .map_err(LakeError::query("meta.landed_objects"))?;
    run.lake
        .write(ctx, def, df, WriteMode::Append, &run.commit())
        .await
}
