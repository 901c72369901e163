//! The bronze job: lands the raw files of each source folder of the landing zone (`lastfm/`,
//! `sparkify/`; see [`sources`]) into bronze Delta tables, as text with lineage, and
//! quarantines every record it cannot land, with a reason.
//!
//! Objects are streamed: a blocking parser thread reads each object (decompressing gzip, tar
//! and zip on the fly) and hands Arrow batches to one streaming Delta writer per table, so no
//! file is held in memory (a zip is spooled to a temporary file, for random access). The new
//! objects of a run form one batch, claimed before it is written ([`claims`]), and each table
//! gets one commit per batch (see [`land_source`] for why a crash loses nothing). Each object
//! is read at the version that was claimed (its ETag): one that changed or went away meanwhile
//! is quarantined as such, never landed under the wrong identity. Records in = landed +
//! quarantined, for every object, reported in the run record; junk that is not data
//! (`.DS_Store`, `__MACOSX/`) is skipped and listed. `--shard i/N` lands a stable share of the
//! objects, so that N runs land a landing zone together ([`shards`]).

pub mod claims;
pub mod landing;
pub mod lines;
pub mod rows;
pub mod shards;
pub mod sources;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::prelude::SessionContext;
use futures::future::{BoxFuture, try_join_all};
use futures::{FutureExt, TryStreamExt};
use lake_runtime::batches::{LaneMarks, Listed, mark};
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    Input, LakeError, Location, Part, Registry, Requires, Result, Run, Summary, WriteMode, Written,
    batch_channel, lane, session,
};
use lake_schema::TableDef;
use object_store::path::Path;
use object_store::{GetOptions, ObjectMeta};
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::claims::{Batch, Claimed, Claims, record_claim};
use crate::landing::{LandError, ObjectCounts, Sinks, land_object};
use crate::rows::{Lineage, QuarantineRows, Sink, TextRows};
use crate::shards::in_shard;
use crate::sources::{Kind, SOURCES, Source};

/// Batches in flight between the parser and each writer.
const CHANNEL_DEPTH: usize = 4;

pub async fn run(run: Arc<Run>, shard: Option<Part>) -> Result<Summary> {
    let landing = Location::open(&run.cfg.landing, &run.cfg).await?;
    let ctx = session(&run.cfg);
    let registry = Registry::of(&run.lake)?;
    let mut claims = Claims::read(&run, &ctx, &registry).await?;
    let lanes = Lanes {
        shard,
        lane: lane(shard),
    };
    let mut summary = Summary::default();
    if let Some(shard) = shard {
        summary.detail("shard", shard.to_string());
    }
    let mut found = false;
    for source in SOURCES {
        let folder = landing.child(source.name)?;
        let at = At {
            run: &run,
            ctx: &ctx,
            source,
            folder: &folder,
            registry: &registry,
        };
        if !folder.exists().await? {
            tracing::info!(
                "no {}/ folder under {}: nothing to land for {}",
                source.name,
                landing.url(),
                source.name
            );
            // a batch claimed before the folder went away is still finished
            let mut details = json!({});
            finish_unfinished(
                &at,
                &lanes,
                &claims,
                &HashMap::new(),
                &mut details,
                &mut summary,
            )
            .await?;
            if details.get("batches_finished").is_some() {
                summary.detail(source.name, details);
            }
            continue;
        }
        found = true;
        land_source(&at, &lanes, &mut claims, &mut summary).await?;
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
    raise_floor(&run, &registry, claims.floor).await?;
    Ok(summary)
}

/// One source folder being landed by a run.
struct At<'a> {
    run: &'a Run,
    ctx: &'a SessionContext,
    source: &'static Source,
    folder: &'a Location,
    registry: &'a Registry,
}

/// The run's shard and lane.
struct Lanes {
    shard: Option<Part>,
    lane: String,
}

impl Lanes {
    /// Whether the landing object at `url` (under the source folder of `at`) is this run's.
    fn owns(&self, at: &At<'_>, url: &str) -> bool {
        let relative = url.strip_prefix(at.folder.url().as_str()).unwrap_or(url);
        in_shard(at.source.name, relative, self.shard)
    }

    /// Whether this run finishes an unfinished batch of `lane`: a plain run finishes every
    /// lane's (its lease excludes every other bronze run, so whoever claimed it is gone); a shard
    /// its own lane's only (the other shards may be at work).
    fn finishes(&self, lane: &str) -> bool {
        self.shard.is_none() || lane == self.lane
    }
}

/// Lands the new objects of one source folder (of this run's shard) as one batch.
///
/// The batch is claimed first: a free batch number is taken for the run's lane, and its objects
/// go into `meta.landed_objects` under it. Then each table of the source (targets and
/// quarantine) gets the batch's rows in one commit that also records the batch number as the
/// table's Delta transaction of the lane. A run that finds a claimed batch which some table does
/// not hold (a run crashed in between) lands it again into exactly those tables, under the
/// batch's own lane, before it looks for new objects. So a crash at any point costs a re-run,
/// never a lost or doubled row; and every claimed batch becomes complete, which is what lets
/// silver take it in ([`lake_runtime::batches`]).
async fn land_source(
    at: &At<'_>,
    lanes: &Lanes,
    claims: &mut Claims,
    summary: &mut Summary,
) -> Result<()> {
    let folder = at.folder;
    let listing: HashMap<String, ObjectMeta> = folder
        .list()
        .await?
        .into_iter()
        .map(|m| (folder.object_url(&m.location), m))
        .collect();
    let mut details = json!({});
    finish_unfinished(at, lanes, claims, &listing, &mut details, summary).await?;
    let mine: HashMap<String, ObjectMeta> = listing
        .into_iter()
        .filter(|(url, _)| lanes.owns(at, url))
        .collect();
    let todo = new_objects(at.source, folder, claims, &mine, &mut details);
    if todo.is_empty() {
        tracing::info!("nothing new to land under {}", folder.url());
        details["nothing_new"] = json!(details.get("batches_finished").is_none());
        summary.detail(at.source.name, details);
        return Ok(());
    }
    let (run, source) = (at.run, at.source);
    let batch = at
        .registry
        .take(claims.last_batch, &lanes.lane, source.name, &run.id)
        .await?;
    lake_runtime::fault::point("bronze.batch_taken");
    let claim = record_claim(run, at.ctx, source.name, batch, &todo, folder).await?;
    summary.outputs.push(claim);
    claims.claimed(source.name, batch, &todo, folder);
    let counts = land_batch(at, &lanes.lane, batch, &todo, &[], summary).await?;
    details["batch"] = json!(batch);
    details["objects"] = json!(counts);
    summary.detail(source.name, details);
    Ok(())
}

/// Lands again the claimed batches of the source that some table lacks, into exactly those
/// tables, each under its own lane (`details.batches_finished`): a batch whose claim has no
/// objects (its run stopped between taking the number and recording the objects) is finished
/// empty; an object that went away or changed since it was claimed is quarantined as such.
/// A shard leaves the other lanes' unfinished batches to their shard or a plain run, and names
/// them (`details.unfinished_batches_of_other_lanes`).
async fn finish_unfinished(
    at: &At<'_>,
    lanes: &Lanes,
    claims: &Claims,
    listing: &HashMap<String, ObjectMeta>,
    details: &mut serde_json::Value,
    summary: &mut Summary,
) -> Result<()> {
    let (run, source) = (at.run, at.source);
    let mut marks = lane_marks(run, source.tables()).await?;
    let (mut finished, mut others) = (Vec::new(), Vec::new());
    for Batch { number, lane } in claims.batches_of(source.name)? {
        let lacking = marks.lacking(&lane, number).await?;
        if lacking.is_empty() {
            continue;
        }
        if !lanes.finishes(&lane) {
            tracing::warn!(
                batch = number,
                lane,
                "batch {number} of lane {lane} is unfinished: a plain bronze run, or the shard of \
                 that lane (the same --shard i/N), finishes it"
            );
            others.push(json!({"batch": number, "lane": lane}));
            continue;
        }
        let objects: Vec<ObjectMeta> = claims
            .objects_of(number)
            .iter()
            .filter(|c| c.source == source.name)
            .map(|c| pinned(c, listing))
            .collect();
        tracing::warn!(
            batch = number,
            lane,
            objects = objects.len(),
            "finishing batch {number}: it was claimed, but {} lack it",
            lacking.join(", ")
        );
        let done: Vec<String> = source
            .tables()
            .map(|t| t.qualified_name())
            .filter(|t| !lacking.contains(t))
            .collect();
        let counts = land_batch(at, &lane, number, &objects, &done, summary).await?;
        for table in &lacking {
            marks.note(table, &lane, number);
        }
        finished.push(json!({"batch": number, "lane": lane, "objects": counts}));
    }
    if !others.is_empty() {
        details["unfinished_batches_of_other_lanes"] = json!(others);
    }
    if !finished.is_empty() {
        details["batches_finished"] = json!(finished);
    }
    Ok(())
}

/// A claimed object as it is to be read: at the ETag and size the claim recorded, at its path
/// in the listing (or, gone from it, at the path of its URL: reading it says it is gone).
fn pinned(claimed: &Claimed, listing: &HashMap<String, ObjectMeta>) -> ObjectMeta {
    let listed = listing.get(&claimed.object);
    let location = listed.map_or_else(
        || {
            let path = url::Url::parse(&claimed.object)
                .ok()
                .and_then(|u| Path::from_url_path(u.path()).ok());
            path.unwrap_or_else(|| Path::from(claimed.object.as_str()))
        },
        |m| m.location.clone(),
    );
    ObjectMeta {
        location,
        last_modified: listed.map(|m| m.last_modified).unwrap_or_default(),
        size: claimed.size,
        e_tag: claimed.e_tag.clone(),
        version: None,
    }
}

/// The lane marks of `tables` as they are now.
async fn lane_marks(
    run: &Run,
    tables: impl Iterator<Item = &'static TableDef>,
) -> Result<LaneMarks> {
    let mut loaded = Vec::new();
    for def in tables {
        loaded.push((def.qualified_name(), run.lake.table(def).await?));
    }
    Ok(LaneMarks::new(loaded))
}

/// Raises the registry's floor to the highest batch at or below which every claimed batch of
/// every source is complete, so that later runs (and silver) list only the claims above it.
async fn raise_floor(run: &Run, registry: &Registry, floor: i64) -> Result<()> {
    let listed: Vec<Listed> = registry.since(floor).await?;
    let mut through = i64::MAX;
    for source in SOURCES {
        let mut marks = lane_marks(run, source.tables()).await?;
        let complete = mark(&listed, source.name, &mut marks, floor, floor).await?;
        through = through.min(complete.through);
    }
    if through > floor && through < i64::MAX {
        registry.raise_floor(through).await?;
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
        match claims.latest.get(url) {
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
    // a table that holds the batch already (another run finished it) refuses it
    let commit = run
        .commit()
        .txn(lane, batch)
        .requires(lane, Requires::Below(batch));
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
    // the version that was claimed, or none
    let pinned = GetOptions::new().with_if_match(meta.e_tag.clone());
    let get = match folder.store().get_opts(&meta.location, pinned).await {
        Ok(get) => get,
        Err(object_store::Error::NotFound { .. }) => {
            let why = "the object was removed from the landing zone after it was claimed: its \
                       records cannot be landed; deliver it again to land them";
            return Ok(unreadable(sinks, url, why));
        }
        Err(object_store::Error::Precondition { .. }) => {
            let why = "the object changed after it was claimed: the claimed version cannot be \
                       read any more; the new version is landed as a new object";
            return Ok(unreadable(sinks, url, why));
        }
        Err(e) => return Err(LakeError::store(url)(e)),
    };
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

/// A claimed object that cannot be read as it was claimed: one quarantine row says why, so that
/// its batch completes and the counts still reconcile.
fn unreadable(mut sinks: Sinks, url: String, why: &str) -> (Sinks, ObjectCounts) {
    tracing::warn!(object = %url, "{why}");
    sinks.quarantine.rows.push("(object)", &url, 0, b"", why);
    let counts = ObjectCounts {
        object: url,
        lines: 1,
        quarantined: 1,
        ..Default::default()
    };
    (sinks, counts)
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
