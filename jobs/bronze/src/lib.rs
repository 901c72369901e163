//! The bronze job: lands the raw files of each source folder of the landing zone (`lastfm/`,
//! `sparkify/`; see [`sources`]) into bronze Delta tables, as text with lineage, and
//! quarantines every record it cannot land, with a reason.
//!
//! Objects are streamed: a blocking parser thread reads each object (decompressing gzip, tar
//! and zip on the fly) and hands Arrow batches to one streaming Delta writer per table, so no
//! file is held in memory (a zip is spooled to a temporary file, for random access). The new
//! objects of a run form one batch, claimed in `meta.landed_objects` before it is written, and
//! each table gets one commit per batch (see [`land_source`] for why a crash loses nothing).
//! Records in = landed + quarantined, for every object, reported in the run record; junk that
//! is not data (`.DS_Store`, `__MACOSX/`) is skipped and listed. `--shard i/N` lands a stable
//! share of the objects, so that N runs land a landing zone together ([`shards`]).

pub mod landing;
pub mod lines;
pub mod rows;
pub mod shards;
pub mod sources;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::{SessionContext, col};
use futures::future::{BoxFuture, try_join_all};
use futures::{FutureExt, TryStreamExt};
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    Input, LakeError, Location, Part, Result, Run, Summary, WriteMode, Written, batch_channel,
    int64_column, session, text_column,
};
use lake_schema::{META_LANDED_OBJECTS, TableDef};
use object_store::{ObjectMeta, ObjectStoreExt};
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::landing::{LandError, ObjectCounts, Sinks, land_object};
use crate::rows::{Lineage, QuarantineRows, Sink, TextRows};
use crate::shards::{Batches, in_shard, lane};
use crate::sources::{Kind, SOURCES, Source};

/// Batches in flight between the parser and each writer.
const CHANNEL_DEPTH: usize = 4;

pub async fn run(run: Arc<Run>, shard: Option<Part>) -> Result<Summary> {
    let landing = Location::open(&run.cfg.landing, &run.cfg).await?;
    let ctx = session(&run.cfg);
    let mut claims = landed_objects(&run, &ctx).await?;
    let mut lanes = Lanes {
        shard,
        lane: lane(shard),
        batches: Batches::open(&run)?,
    };
    let mut summary = Summary::default();
    if let Some(shard) = shard {
        summary.detail("shard", shard.to_string());
    }
    let mut found = false;
    for source in SOURCES {
        let folder = landing.child(source.name)?;
        if !folder.exists().await? {
            tracing::info!(
                "no {}/ folder under {}: nothing to land for {}",
                source.name,
                landing.url(),
                source.name
            );
            continue;
        }
        found = true;
        let at = At {
            run: &run,
            ctx: &ctx,
            source,
            folder: &folder,
        };
        land_source(&at, &mut lanes, &mut claims, &mut summary).await?;
    }
    if !found {
        let names: Vec<String> = SOURCES.iter().map(|s| format!("{}/", s.name)).collect();
        return Err(LakeError::Config {
            message: format!(
                "no landing data at {}: expected a folder per source ({}); put the source files there \
                 (or run `make sample` for the generated sample), or point --landing / LAKE_LANDING elsewhere",
                landing.url(),
                names.join(", ")
            ),
        });
    }
    Ok(summary)
}

/// One source folder being landed by a run.
struct At<'a> {
    run: &'a Run,
    ctx: &'a SessionContext,
    source: &'static Source,
    folder: &'a Location,
}

/// The run's shard and lane, and the lake's batch numbers.
struct Lanes {
    shard: Option<Part>,
    lane: String,
    batches: Batches,
}

impl Lanes {
    /// Whether the landing object at `url` (under the source folder of `at`) is this run's.
    fn owns(&self, at: &At<'_>, url: &str) -> bool {
        let relative = url.strip_prefix(at.folder.url().as_str()).unwrap_or(url);
        in_shard(at.source.name, relative, self.shard)
    }
}

/// Lands the new objects of one source folder (of this run's shard) as one batch.
///
/// The batch is claimed first: a free batch number is taken for the run's lane, and its objects
/// go into `meta.landed_objects` under it. Then each table of the source (targets and
/// quarantine) gets the batch's rows in one commit that also records the batch number as the
/// table's Delta transaction of the lane. A run that finds a claimed batch of its lane which
/// some table does not hold (the previous run crashed in between) lands that batch again into
/// exactly those tables, before it looks for new objects. So a crash at any point costs a
/// re-run, never a lost or doubled row.
async fn land_source(
    at: &At<'_>,
    lanes: &mut Lanes,
    claims: &mut Claims,
    summary: &mut Summary,
) -> Result<()> {
    let folder = at.folder;
    let listing: HashMap<String, ObjectMeta> = folder
        .list()
        .await?
        .into_iter()
        .map(|m| (folder.object_url(&m.location), m))
        .filter(|(url, _)| lanes.owns(at, url))
        .collect();
    let mut details = json!({});
    finish_claimed(at, lanes, claims, &listing, &mut details, summary).await?;
    let todo = new_objects(at.source, folder, claims, &listing, &mut details);
    if todo.is_empty() {
        tracing::info!("nothing new to land under {}", folder.url());
        details["nothing_new"] = json!(details.get("batches_finished").is_none());
        summary.detail(at.source.name, details);
        return Ok(());
    }
    let (run, source) = (at.run, at.source);
    let batch = lanes
        .batches
        .take(claims.last_batch, &lanes.lane, source.name, run)
        .await?;
    claims.last_batch = batch;
    let claim = record_claim(run, at.ctx, source.name, batch, &todo, folder).await?;
    summary.outputs.push(claim);
    for meta in &todo {
        claims.objects.insert(
            folder.object_url(&meta.location),
            Claim {
                source: source.name.to_string(),
                size: meta.size,
                e_tag: meta.e_tag.clone(),
                batch,
            },
        );
    }
    let counts = land_batch(at, &lanes.lane, batch, &todo, &[], summary).await?;
    details["batch"] = json!(batch);
    details["objects"] = json!(counts);
    summary.detail(source.name, details);
    Ok(())
}

/// Lands again the batches of the run's lane that a run claimed but stopped before every table
/// of the source held them, into exactly the tables that lack them (`details.batches_finished`).
/// Unfinished batches of other lanes among this run's objects are named, not landed: the
/// shard that claimed them finishes them (`details.unfinished_batches_of_other_lanes`).
async fn finish_claimed(
    at: &At<'_>,
    lanes: &mut Lanes,
    claims: &Claims,
    listing: &HashMap<String, ObjectMeta>,
    details: &mut serde_json::Value,
    summary: &mut Summary,
) -> Result<()> {
    let (run, source) = (at.run, at.source);
    let held = |lane: String| async move {
        let mut held = Vec::new();
        for t in source.tables() {
            let batch = run.lake.txn_version(t, &lane).await?.unwrap_or(-1);
            held.push((t.qualified_name(), batch));
        }
        Result::Ok(held)
    };
    let mine = held(lanes.lane.clone()).await?;
    let oldest_held = mine.iter().map(|(_, b)| *b).min().unwrap_or(-1);
    let mut unfinished: BTreeMap<i64, Vec<ObjectMeta>> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut others = BTreeMap::new();
    for (url, claim) in &claims.objects {
        if claim.source != source.name || claim.batch <= oldest_held || !lanes.owns(at, url) {
            continue;
        }
        let lane = lanes.batches.lane_of(claim.batch).await?;
        if lane != lanes.lane {
            others.insert(claim.batch, lane);
            continue;
        }
        match listing.get(url) {
            Some(meta) => unfinished
                .entry(claim.batch)
                .or_default()
                .push(meta.clone()),
            None => missing.push(url.clone()),
        }
    }
    let mut of_others = Vec::new();
    for (batch, lane) in others {
        if held(lane.clone()).await?.iter().any(|(_, h)| *h < batch) {
            tracing::warn!(
                batch,
                lane,
                "batch {batch} of lane {lane} is unfinished: run bronze with that lane's --shard \
                 (the same i/N) to finish it"
            );
            of_others.push(json!({"batch": batch, "lane": lane}));
        }
    }
    if !of_others.is_empty() {
        details["unfinished_batches_of_other_lanes"] = json!(of_others);
    }
    if !missing.is_empty() {
        tracing::warn!(
            objects = ?missing,
            "objects of an unfinished batch are gone from landing: they cannot be landed"
        );
        details["claimed_objects_missing"] = json!(missing);
    }
    let mut recovered = Vec::new();
    for (batch, mut objects) in unfinished {
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let done: Vec<String> = mine
            .iter()
            .filter(|(_, h)| *h >= batch)
            .map(|(t, _)| t.clone())
            .collect();
        tracing::warn!(
            batch,
            objects = objects.len(),
            "finishing batch {batch}: a run claimed it but stopped before every table held it"
        );
        let counts = land_batch(at, &lanes.lane, batch, &objects, &done, summary).await?;
        recovered.push(json!({"batch": batch, "objects": counts}));
    }
    if !recovered.is_empty() {
        details["batches_finished"] = json!(recovered);
    }
    Ok(())
}

/// The objects of the listing to land now: new ones, and changed ones (landed again as new
/// data). Notes the objects skipped, already landed and changed in `details`.
fn new_objects(
    source: &Source,
    folder: &Location,
    claims: &Claims,
    listing: &HashMap<String, ObjectMeta>,
    details: &mut serde_json::Value,
) -> Vec<ObjectMeta> {
    let mut todo = Vec::new();
    let (mut ignored, mut unchanged, mut changed) = (Vec::new(), 0, Vec::new());
    let mut urls: Vec<&String> = listing.keys().collect();
    urls.sort();
    for url in urls {
        let meta = &listing[url];
        if let Kind::Ignored(why) = (source.classify)(&folder.relative(&meta.location)) {
            tracing::info!(object = %url, "skipped: {why}");
            ignored.push(json!({"object": url, "reason": why}));
            continue;
        }
        match claims.objects.get(url) {
            Some(c) if (c.size, &c.e_tag) == (meta.size, &meta.e_tag) => unchanged += 1,
            Some(_) => {
                tracing::warn!(object = %url, "changed since it was landed: landing it again as new data");
                changed.push(url.clone());
                todo.push(meta.clone());
            }
            None => todo.push(meta.clone()),
        }
    }
    details["objects_ignored"] = json!(ignored);
    details["objects_already_landed"] = json!(unchanged);
    details["objects_changed"] = json!(changed);
    todo
}

/// Lands `objects` as batch `batch`: one streaming writer per table of the source (its targets,
/// then its quarantine), fed by a parser thread, each committing once with the batch as its
/// transaction of `lane`. The tables named in `done` already hold the batch: their rows are
/// read and dropped. Returns the per-object counts, also added to `summary`.
async fn land_batch(
    at: &At<'_>,
    lane: &str,
    batch: i64,
    objects: &[ObjectMeta],
    done: &[String],
    summary: &mut Summary,
) -> Result<Vec<ObjectCounts>> {
    let (run, ctx, source, folder) = (at.run, at.ctx, at.source, at.folder);
    let lineage = Lineage {
        batch,
        run_id: run.id.as_str().into(),
        ingested_at: run.started_micros(),
    };
    let commit = run.commit().txn(lane, batch);
    let mut aborts = Vec::new();
    let mut writers: Vec<BoxFuture<'_, Result<Option<Written>>>> = Vec::new();
    let mut open = |def: &'static TableDef| {
        let (tx, mut rx) = batch_channel(CHANNEL_DEPTH);
        aborts.push(tx.clone());
        if done.contains(&def.qualified_name()) {
            tracing::info!(table = %def.qualified_name(), batch, "already holds this batch");
            writers.push(
                async move {
                    while rx.recv().await.is_some() {}
                    Ok(None)
                }
                .boxed(),
            );
        } else {
            let write = run
                .lake
                .write_stream(ctx, def, rx, WriteMode::Append, &commit);
            writers.push(async move { write.await.map(Some) }.boxed());
        }
        tx
    };
    let mut targets = Vec::new();
    for target in source.targets {
        let tx = open(target.def);
        let rows = TextRows::new(target, lineage.clone());
        targets.push((*target, Sink::new(rows, tx)));
    }
    let tx = open(source.quarantine);
    let quarantine = Sink::new(QuarantineRows::new(source.quarantine, lineage), tx);
    let sinks = Sinks {
        targets,
        quarantine,
    };

    let parser = async {
        let result = land_all(folder, source, objects, sinks).await;
        if let Err(e) = &result {
            // make every writer fail instead of committing a partial landing
            for tx in &aborts {
                let message = format!("landing aborted: {e}");
                let _ = tx
                    .send(Err(datafusion::error::DataFusionError::Execution(message)))
                    .await;
            }
        }
        drop(aborts);
        result
    };
    let (written, parsed) = tokio::join!(try_join_all(writers), parser);
    let (written, per_object) = (written?, parsed?);
    for c in &per_object {
        summary.rows_in += c.lines;
        summary.rows_out += c.landed;
        summary.rows_quarantined += c.quarantined;
        summary.inputs.push(Input {
            name: c.object.clone(),
            version: None,
        });
    }
    summary.outputs.extend(written.into_iter().flatten());
    Ok(per_object)
}

/// Reads every object in turn on a blocking thread and feeds the sinks.
async fn land_all(
    folder: &Location,
    source: &'static Source,
    todo: &[ObjectMeta],
    mut sinks: Sinks,
) -> Result<Vec<ObjectCounts>> {
    lake_runtime::fault::point("bronze.reading");
    let total = todo.iter().map(|m| m.size).sum();
    let progress = Progress::new(&format!("bronze {}", source.name), total, Unit::Bytes);
    let mut per_object = Vec::new();
    for meta in todo {
        let (returned, counts) = land_one(folder, source, meta, sinks, &progress).await?;
        sinks = returned;
        per_object.push(counts);
    }
    progress.finish();
    tokio::task::spawn_blocking(move || sinks.flush())
        .await
        .map_err(|e| LakeError::Io {
            location: folder.url().to_string(),
            message: format!("the parser thread stopped: {e}"),
        })?
        .map_err(|_| LakeError::Io {
            location: folder.url().to_string(),
            message: "a table writer stopped (see its error above)".into(),
        })?;
    Ok(per_object)
}

/// Streams one object through the parser on a blocking thread into the sinks, and hands them
/// back with the object's counts (see [`settle`] for what a failure means).
async fn land_one(
    folder: &Location,
    source: &'static Source,
    meta: &ObjectMeta,
    mut sinks: Sinks,
    progress: &Progress,
) -> Result<(Sinks, ObjectCounts)> {
    let url = folder.object_url(&meta.location);
    let name = folder.relative(&meta.location);
    tracing::info!(object = %url, bytes = meta.size, "landing");
    let get = folder
        .store()
        .get(&meta.location)
        .await
        .map_err(LakeError::store(url.clone()))?;
    let store_failed = Arc::new(AtomicBool::new(false));
    let flag = store_failed.clone();
    let read = progress.clone();
    let stream = get
        .into_stream()
        .inspect_ok(move |bytes| read.inc(bytes.len() as u64))
        .map_err(move |e| {
            flag.store(true, Ordering::Relaxed);
            std::io::Error::other(e)
        });
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let object = url.clone();
    let (mut sinks, mut counts, outcome) = tokio::task::spawn_blocking(move || {
        let mut counts = ObjectCounts {
            object: object.clone(),
            ..Default::default()
        };
        let outcome = land_object(reader, &name, &object, source, &mut sinks, &mut counts);
        (sinks, counts, outcome)
    })
    .await
    .map_err(|e| LakeError::Io {
        location: url.clone(),
        message: format!("the parser thread stopped: {e}"),
    })?;
    settle(
        outcome,
        &url,
        source,
        store_failed.load(Ordering::Relaxed),
        &mut sinks,
        &mut counts,
    )?;
    tracing::info!(
        object = %url,
        records = counts.lines,
        landed = counts.landed,
        quarantined = counts.quarantined,
        "object read"
    );
    Ok((sinks, counts))
}

/// What a failed parse of an object means: broken bytes (corrupt gzip, a truncated archive)
/// keep what was read and quarantine the rest as one row; a failing store or writer fails the
/// run.
fn settle(
    outcome: std::result::Result<(), LandError>,
    url: &str,
    source: &Source,
    store_failed: bool,
    sinks: &mut Sinks,
    counts: &mut ObjectCounts,
) -> Result<()> {
    let failed = |message: String| LakeError::Io {
        location: url.to_string(),
        message,
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(LandError::Writer(_)) => Err(failed(
            "a table writer stopped (see its error above)".into(),
        )),
        Err(LandError::Undeclared(table)) => Err(failed(format!(
            "a record is meant for {table}, which is not a target of the {} source: its \
             declaration in jobs/bronze/src/sources.rs is inconsistent",
            source.name
        ))),
        Err(LandError::Read { after_line, error }) if store_failed => Err(failed(format!(
            "reading failed after record {after_line}: {error}; re-run when the store is reachable"
        ))),
        Err(LandError::Read { after_line, error }) => {
            let reason = format!(
                "object is corrupt or truncated after record {after_line}: {error}; the records before were landed"
            );
            tracing::warn!(object = %url, "{reason}");
            sinks
                .quarantine
                .rows
                .push("(object)", url, after_line + 1, b"", &reason);
            counts.lines += 1;
            counts.quarantined += 1;
            Ok(())
        }
    }
}

/// What `meta.landed_objects` says about one landing object (its latest claim).
struct Claim {
    source: String,
    size: u64,
    e_tag: Option<String>,
    batch: i64,
}

/// Every landing object claimed so far, by URI, and the batch numbers used.
struct Claims {
    objects: HashMap<String, Claim>,
    last_batch: i64,
}

/// The objects claimed so far (of every source), with the size, ETag and batch they had.
async fn landed_objects(run: &Run, ctx: &SessionContext) -> Result<Claims> {
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
    let mut claims = Claims {
        objects: HashMap::new(),
        last_batch: 0,
    };
    let bad = |e: datafusion::arrow::error::ArrowError| err(e.into());
    for b in batches {
        let (source, object, size, e_tag, batch) = (
            text_column(&b, "source").map_err(bad)?,
            text_column(&b, "object").map_err(bad)?,
            int64_column(&b, "size").map_err(bad)?,
            text_column(&b, "e_tag").map_err(bad)?,
            int64_column(&b, "batch").map_err(bad)?,
        );
        for i in 0..b.num_rows() {
            let claim = Claim {
                source: source.value(i).to_string(),
                size: size.value(i) as u64,
                e_tag: (!e_tag.is_null(i)).then(|| e_tag.value(i).to_string()),
                batch: batch.value(i),
            };
            claims.last_batch = claims.last_batch.max(claim.batch);
            claims.objects.insert(object.value(i).to_string(), claim);
        }
    }
    Ok(claims)
}

/// Claims `todo` as batch `batch` in `meta.landed_objects`, before any of its rows is written.
async fn record_claim(
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
