//! The bronze job: lands the raw files of each source folder of the landing zone (`lastfm/`,
//! `sparkify/`; see [`sources`]) into bronze Delta tables, as text with lineage, and
//! quarantines every record it cannot land, with a reason.
//!
//! Objects are streamed: a blocking parser thread reads each object (decompressing gzip, tar
//! and zip on the fly) and hands Arrow batches to one streaming Delta writer per table, so no
//! file is held in memory (a zip is spooled to a temporary file, for random access). Each table
//! gets one commit per run. Records in = landed + quarantined, for every object, reported in
//! the run record; junk that is not data (`.DS_Store`, `__MACOSX/`) is skipped and listed.

pub mod landing;
pub mod lines;
pub mod rows;
pub mod sources;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use futures::future::try_join_all;
use lake_runtime::{
    Input, LakeError, Location, Result, Run, Summary, WriteMode, Written, batch_channel,
    int64_column, session, text_column,
};
use lake_schema::META_LANDED_OBJECTS;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::landing::{LandError, ObjectCounts, Sinks, land_object};
use crate::rows::{Lineage, QuarantineRows, Sink, TextRows};
use crate::sources::{Kind, SOURCES, Source};

/// Batches in flight between the parser and each writer.
const CHANNEL_DEPTH: usize = 4;

pub async fn run(run: Arc<Run>) -> Result<Summary> {
    let landing = Location::open(&run.cfg.landing, &run.cfg).await?;
    let ctx = session();
    let landed = landed_objects(&run, &ctx).await?;
    let mut summary = Summary::default();
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
        land_source(&run, &ctx, source, &folder, &landed, &mut summary).await?;
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

/// Lands the new objects of one source folder: one streaming writer per target table and one
/// for its quarantine, fed by a parser thread; then records the objects as landed.
async fn land_source(
    run: &Run,
    ctx: &SessionContext,
    source: &'static Source,
    folder: &Location,
    landed: &Seen,
    summary: &mut Summary,
) -> Result<()> {
    let mut todo = Vec::new();
    let (mut ignored, mut unchanged, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for meta in folder.list().await? {
        let rel = folder.relative(&meta.location);
        let url = folder.object_url(&meta.location);
        if let Kind::Ignored(why) = (source.classify)(&rel) {
            tracing::info!(object = %url, "skipped: {why}");
            ignored.push(json!({"object": url, "reason": why}));
            continue;
        }
        match landed.get(&url) {
            Some(seen) if *seen == (meta.size, meta.e_tag.clone()) => unchanged.push(url),
            Some(_) => {
                tracing::warn!(object = %url, "changed since it was landed: landing it again as new data");
                changed.push(url);
                todo.push(meta);
            }
            None => todo.push(meta),
        }
    }
    let mut details = json!({
        "objects_ignored": ignored,
        "objects_already_landed": unchanged.len(),
        "objects_changed": changed,
    });
    if todo.is_empty() {
        tracing::info!("nothing new to land under {}", folder.url());
        details["nothing_new"] = json!(true);
        summary.detail(source.name, details);
        return Ok(());
    }

    let lineage = Lineage {
        run_id: run.id.as_str().into(),
        ingested_at: run.started_micros(),
    };
    let mut aborts = Vec::new();
    let mut writers = Vec::new();
    let mut targets = Vec::new();
    for target in source.targets {
        let (tx, rx) = batch_channel(CHANNEL_DEPTH);
        aborts.push(tx.clone());
        targets.push(Sink::new(TextRows::new(target.def, lineage.clone()), tx));
        writers.push(
            run.lake
                .write_stream(ctx, target.def, rx, WriteMode::Append, &run.id),
        );
    }
    let (tx, rx) = batch_channel(CHANNEL_DEPTH);
    aborts.push(tx.clone());
    let quarantine = Sink::new(QuarantineRows::new(source.quarantine, lineage), tx);
    writers.push(
        run.lake
            .write_stream(ctx, source.quarantine, rx, WriteMode::Append, &run.id),
    );
    let sinks = Sinks {
        targets,
        quarantine,
    };

    let parser = async {
        let result = land_all(folder, source, &todo, sinks).await;
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
    let mut written = written?;
    let per_object = parsed?;

    for c in &per_object {
        summary.rows_in += c.lines;
        summary.rows_out += c.landed;
        summary.rows_quarantined += c.quarantined;
        summary.inputs.push(Input {
            name: c.object.clone(),
            version: None,
        });
    }
    written.push(record_landed(run, ctx, source.name, &todo, folder, &per_object).await?);
    summary.outputs.extend(written);
    details["objects"] = serde_json::to_value(&per_object).unwrap_or_default();
    summary.detail(source.name, details);
    Ok(())
}

/// Reads every object in turn on a blocking thread and feeds the sinks.
async fn land_all(
    folder: &Location,
    source: &'static Source,
    todo: &[ObjectMeta],
    mut sinks: Sinks,
) -> Result<Vec<ObjectCounts>> {
    let mut per_object = Vec::new();
    for meta in todo {
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
        let stream = get.into_stream().map_err(move |e| {
            flag.store(true, Ordering::Relaxed);
            std::io::Error::other(e)
        });
        let reader = SyncIoBridge::new(StreamReader::new(stream));
        let object = url.clone();
        let (returned, counts, outcome) = tokio::task::spawn_blocking(move || {
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
        sinks = returned;
        let mut counts = counts;
        match outcome {
            Ok(()) => {}
            Err(LandError::Writer(_)) => {
                return Err(LakeError::Io {
                    location: url,
                    message: "a table writer stopped (see its error above)".into(),
                });
            }
            Err(LandError::Read { after_line, error }) if store_failed.load(Ordering::Relaxed) => {
                return Err(LakeError::Io {
                    location: url,
                    message: format!(
                        "reading failed after record {after_line}: {error}; re-run when the store is reachable"
                    ),
                });
            }
            Err(LandError::Read { after_line, error }) => {
                // the bytes themselves are broken (corrupt gzip, truncated archive): keep what was
                // read, and quarantine the rest of the object as one row
                let reason = format!(
                    "object is corrupt or truncated after record {after_line}: {error}; the records before were landed"
                );
                tracing::warn!(object = %url, "{reason}");
                sinks
                    .quarantine
                    .rows
                    .push("(object)", &url, after_line + 1, b"", &reason);
                counts.lines += 1;
                counts.quarantined += 1;
            }
        }
        tracing::info!(
            object = %url,
            records = counts.lines,
            landed = counts.landed,
            quarantined = counts.quarantined,
            "object read"
        );
        per_object.push(counts);
    }
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

type Seen = HashMap<String, (u64, Option<String>)>;

/// Objects already landed (of every source), with the size and ETag they had.
async fn landed_objects(run: &Run, ctx: &SessionContext) -> Result<Seen> {
    let def = &META_LANDED_OBJECTS;
    run.lake.register(ctx, def).await?;
    let sql = format!("SELECT object, size, e_tag FROM {}", def.qualified_name());
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(LakeError::query("reading meta.landed_objects"))?
        .collect()
        .await
        .map_err(LakeError::query("reading meta.landed_objects"))?;
    let mut seen = Seen::new();
    let bad = |e: datafusion::arrow::error::ArrowError| {
        LakeError::query("reading meta.landed_objects")(e.into())
    };
    for b in batches {
        let (o, s, e) = (
            text_column(&b, 0).map_err(bad)?,
            int64_column(&b, 1).map_err(bad)?,
            text_column(&b, 2).map_err(bad)?,
        );
        for i in 0..b.num_rows() {
            let etag = (!e.is_null(i)).then(|| e.value(i).to_string());
            seen.insert(o.value(i).to_string(), (s.value(i) as u64, etag));
        }
    }
    Ok(seen)
}

async fn record_landed(
    run: &Run,
    ctx: &SessionContext,
    source: &str,
    todo: &[ObjectMeta],
    folder: &Location,
    per_object: &[ObjectCounts],
) -> Result<Written> {
    let def = &META_LANDED_OBJECTS;
    let n = todo.len();
    let col = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let batch = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            col(vec![Some(source.to_string()); n]),
            col(todo
                .iter()
                .map(|m| Some(folder.object_url(&m.location)))
                .collect()),
            Arc::new(Int64Array::from(
                todo.iter().map(|m| m.size as i64).collect::<Vec<_>>(),
            )),
            col(todo.iter().map(|m| m.e_tag.clone()).collect()),
            Arc::new(Int64Array::from(
                per_object
                    .iter()
                    .map(|c| c.lines as i64)
                    .collect::<Vec<_>>(),
            )),
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
        .write(ctx, def, df, WriteMode::Append, &run.id)
        .await
}
