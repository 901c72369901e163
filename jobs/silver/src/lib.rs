//! The silver job: conforms bronze into typed fact and dimension tables, source by source.
//!
//! A source is declared ([`sources`], in the terms of [`source`]): its checked views (SQL in
//! `sql/`, `<source>_*_checked.sql`) type every bronze record and name the first rule it
//! breaks; its tables keep what passes, its quarantine what does not, so every bronze record
//! ends up in exactly one place or is counted in the run record's reconciliation. One engine
//! ([`engine`]) runs every source; a source whose bronze tables do not exist yet is skipped.
//!
//! Runs are incremental. Bronze rows carry the batch that landed them; every silver commit
//! records the last bronze batch it includes as the Delta transaction `lake.silver`, in the
//! same commit as its rows. A run reads that per table and rebuilds only what the newer
//! batches change ([`source::Kind`]): the months they touch of a month-partitioned table, the
//! whole of a small dimension, the new rejects of a quarantine. A crash between two tables'
//! commits leaves each table knowing what it holds, so the re-run finishes exactly the rest.
//! `--full-refresh` rebuilds every table from all of bronze; `--from`/`--to` rebuilds the
//! months of a date range of the month-partitioned tables, each table in one commit;
//! `--part i/N` one of N such ranges that N runs rebuild at the same time ([`parts`]).

mod engine;
mod parts;
pub mod source;
pub mod sources;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use lake_runtime::{Part, Result, Run, Scope, Summary, session};
use serde_json::json;

use engine::{Engine, Target};
use parts::Split;

pub async fn run(run: Arc<Run>, scope: Scope, part: Option<Part>) -> Result<Summary> {
    let ctx = session(&run.cfg);
    let mut summary = Summary::default();
    let target = match part {
        Some(part) => plan_part(&run, &ctx, part, &mut summary).await?,
        None => Target { scope, part: None },
    };
    summary.detail("scope", format!("{:?}", target.scope));
    // a run over all changes may take the state of month-partitioned tables from the parts
    let split = match target.scope {
        Scope::Changed => parts::last_split(&run).await?,
        _ => None,
    };
    let mut built = 0;
    for source in sources::SOURCES {
        let engine = Engine::open(&run, &ctx, target, split.as_ref(), source, &mut summary).await?;
        if let Some(engine) = engine {
            engine.build(&mut summary).await?;
            built += 1;
        }
    }
    if built == 0 {
        tracing::warn!("no bronze tables in {} yet: run bronze first", run.cfg.lake);
    }
    Ok(summary)
}

/// Plans part `part` of a split: the months of every source's records, cut into ranges (the
/// same cut in every part, from the same bronze); notes the split for the next plain run.
async fn plan_part(
    run: &Run,
    ctx: &SessionContext,
    part: Part,
    summary: &mut Summary,
) -> Result<Target> {
    let mut months = BTreeMap::new();
    let mut through_batch = 0;
    let whole = Target {
        scope: Scope::Full,
        part: None,
    };
    for source in sources::SOURCES {
        let mut scratch = Summary::default();
        if let Some(engine) = Engine::open(run, ctx, whole, None, source, &mut scratch).await? {
            for (month, n) in engine.month_counts().await? {
                *months.entry(month).or_insert(0) += n;
            }
            through_batch = through_batch.max(engine.high());
        }
    }
    let range = parts::split(&months, part);
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
    summary.detail(
        "part",
        json!({
            "part": part.to_string(),
            "from": range.and_then(|r| day(r.0)),
            "to": range.and_then(|r| day(r.1)),
            "empty": range.is_none(),
            "months_in_split": months.len(),
        }),
    );
    tracing::info!(
        "part {part} of {} months: {}",
        months.len(),
        match range {
            Some((from, to)) => format!(
                "{} to {}",
                day(from).unwrap_or_else(|| "the start".into()),
                day(to).unwrap_or_else(|| "the end".into())
            ),
            None => "no month left for it".into(),
        }
    );
    let split = Split {
        count: part.count,
        through_batch,
    };
    parts::note_split(run, &split).await?;
    let (from, to) = range.unwrap_or((None, None));
    Ok(Target {
        scope: Scope::Range(from, to),
        part: Some((part, range.is_none())),
    })
}
