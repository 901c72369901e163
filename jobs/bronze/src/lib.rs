//! The bronze job: lands the raw files of each source in the landing zone into bronze Delta
//! tables, as text with lineage, and quarantines every line it cannot land, with a reason.
//!
//! Objects are streamed: a blocking parser thread reads each object (decompressing gzip and
//! tar on the fly) and hands Arrow batches to one streaming Delta writer per table, so no file
//! is ever held in memory. Each table gets one commit per run. Lines in = lines landed +
//! lines quarantined, for every object, reported in the run record.

pub mod lastfm;
pub mod lines;
pub mod rows;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use lake_runtime::{
    Input, LakeError, Location, Result, Run, Summary, WriteMode, Written, batch_channel,
    int64_column, session, text_column,
};
use lake_schema::{
    BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES, BRONZE_LASTFM_QUARANTINE, LASTFM,
    META_LANDED_OBJECTS,
};
use object_store::{ObjectMeta, ObjectStoreExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::lastfm::{Kind, LandError, ObjectCounts, Sinks, classify, land_object};
use crate::rows::{Lineage, QuarantineRows, Sink, TextRows};

/// Batches in flight between the parser and each writer.
const CHANNEL_DEPTH: usize = 4;

pub async fn run(run: Arc<Run>) -> Result<Summary> {
    let landing = Location::open(&run.cfg.landing, &run.cfg).await?;
    let source = landing.child(LASTFM)?;
    if !source.exists().await? {
        return Err(LakeError::Config {
            message: format!(
                "no Last.fm landing data at {}: put the Last.fm 1K files there \
                 (or run `make sample` for the generated sample), or point --landing / LAKE_LANDING elsewhere",
                source.url()
            ),
        });
    }
    let ctx = session();
    let landed = landed_objects(&run, &ctx).await?;
    let mut summary = Summary::default();
    let mut todo = Vec::new();
    let (mut ignored, mut unchanged, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for meta in source.list().await? {
        let rel = source.relative(&meta.location);
        let url = source.object_url(&meta.location);
        if let Kind::Ignored(why) = classify(&rel) {
            tracing::info!(object = %url, "skipped: {why}");
            ignored.push(serde_json::json!({"object": url, "reason": why}));
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
    summary.detail("objects_ignored", ignored);
    summary.detail("objects_already_landed", unchanged.len());
    summary.detail("objects_changed", changed);
    if todo.is_empty() {
        tracing::info!("nothing new to land under {}", source.url());
        summary.detail("nothing_new", true);
        return Ok(summary);
    }

    let lineage = Lineage {
        run_id: run.id.as_str().into(),
        ingested_at: run.started_micros(),
    };
    let (plays_tx, plays_rx) = batch_channel(CHANNEL_DEPTH);
    let (profiles_tx, profiles_rx) = batch_channel(CHANNEL_DEPTH);
    let (quarantine_tx, quarantine_rx) = batch_channel(CHANNEL_DEPTH);
    let aborts = [plays_tx.clone(), profiles_tx.clone(), quarantine_tx.clone()];
    let sinks = Sinks {
        plays: Sink::new(
            TextRows::new(&BRONZE_LASTFM_PLAYS, lineage.clone()),
            plays_tx,
        ),
        profiles: Sink::new(
            TextRows::new(&BRONZE_LASTFM_PROFILES, lineage.clone()),
            profiles_tx,
        ),
        quarantine: Sink::new(
            QuarantineRows::new(&BRONZE_LASTFM_QUARANTINE, lineage),
            quarantine_tx,
        ),
    };
    let lake = &run.lake;
    let writers = async {
        tokio::try_join!(
            lake.write_stream(
                &ctx,
                &BRONZE_LASTFM_PLAYS,
                plays_rx,
                WriteMode::Append,
                &run.id
            ),
            lake.write_stream(
                &ctx,
                &BRONZE_LASTFM_PROFILES,
                profiles_rx,
                WriteMode::Append,
                &run.id
            ),
            lake.write_stream(
                &ctx,
                &BRONZE_LASTFM_QUARANTINE,
                quarantine_rx,
                WriteMode::Append,
                &run.id
            ),
        )
    };
    let parser = async {
        let result = land_all(&source, &todo, sinks).await;
        if let Err(e) = &result {
            // make every writer fail instead of committing a partial landing
            for tx in &aborts {
                let _ = tx
                    .send(Err(datafusion::error::DataFusionError::Execution(format!(
                        "landing aborted: {e}"
                    ))))
                    .await;
            }
        }
        drop(aborts);
        result
    };
    let (written, parsed) = tokio::join!(writers, parser);
    let (plays, profiles, quarantine) = written?;
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
    let record = record_landed(&run, &ctx, &todo, &source, &per_object).await?;
    summary.outputs = vec![plays, profiles, quarantine, record];
    summary.detail(
        "objects",
        serde_json::to_value(&per_object).unwrap_or_default(),
    );
    Ok(summary)
}

/// Reads every object in turn on a blocking thread and feeds the sinks.
async fn land_all(
    source: &Location,
    todo: &[ObjectMeta],
    mut sinks: Sinks,
) -> Result<Vec<ObjectCounts>> {
    let mut per_object = Vec::new();
    for meta in todo {
        let url = source.object_url(&meta.location);
        let name = source.relative(&meta.location);
        tracing::info!(object = %url, bytes = meta.size, "landing");
        let get = source
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
            let outcome = land_object(reader, &name, &object, &mut sinks, &mut counts);
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
                        "reading failed after line {after_line}: {error}; re-run when the store is reachable"
                    ),
                });
            }
            Err(LandError::Read { after_line, error }) => {
                // the bytes themselves are broken (corrupt gzip, truncated archive): keep what was
                // read, and quarantine the rest of the object as one row
                let reason = format!(
                    "object is corrupt or truncated after line {after_line}: {error}; the lines before were landed"
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
            lines = counts.lines,
            landed = counts.landed,
            quarantined = counts.quarantined,
            "object read"
        );
        per_object.push(counts);
    }
    tokio::task::spawn_blocking(move || {
        sinks.plays.flush()?;
        sinks.profiles.flush()?;
        sinks.quarantine.flush()
    })
    .await
    .map_err(|e| LakeError::Io {
        location: source.url().to_string(),
        message: format!("the parser thread stopped: {e}"),
    })?
    .map_err(|_| LakeError::Io {
        location: source.url().to_string(),
        message: "a table writer stopped (see its error above)".into(),
    })?;
    Ok(per_object)
}

type Seen = HashMap<String, (u64, Option<String>)>;

/// Objects of this source already landed, with the size and ETag they had.
async fn landed_objects(run: &Run, ctx: &SessionContext) -> Result<Seen> {
    let def = &META_LANDED_OBJECTS;
    run.lake.register(ctx, def).await?;
    let sql = format!(
        "SELECT object, size, e_tag FROM {} WHERE source = '{LASTFM}'",
        def.qualified_name()
    );
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
    todo: &[ObjectMeta],
    source: &Location,
    per_object: &[ObjectCounts],
) -> Result<Written> {
    let def = &META_LANDED_OBJECTS;
    let n = todo.len();
    let col = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let batch = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            col(vec![Some(LASTFM.to_string()); n]),
            col(todo
                .iter()
                .map(|m| Some(source.object_url(&m.location)))
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
