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
mod tap;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use lake_runtime::{Part, Registry, Result, Run, Scope, Summary, session};
use serde_json::json;

use engine::{Engine, PartOf, Target};
use parts::{Plans, Split, part_txn};
use source::Kind;

pub async fn run(run: Arc<Run>, scope: Scope, part: Option<Part>) -> Result<Summary> {
    let ctx = session(&run.cfg);
    let mut summary = Summary::default();
    // the bronze batches claimed, from which each source's engine finds which are complete
    let registry = Registry::of(&run.lake)?;
    let plans = Plans::of(&run)?;
    let target = match part {
        Some(part) => plan_part(&run, &ctx, &registry, &plans, part, &mut summary).await?,
        None => Target {
            scope,
            part: None,
            through: None,
        },
    };
    summary.detail("scope", format!("{:?}", target.scope));
    // a run over all changes may take the state of month-partitioned tables from the parts
    let split = match target.scope {
        Scope::Changed => plans.newest().await?.map(|(_, split)| split),
        _ => None,
    };
    let mut built = 0;
    for source in sources::SOURCES {
        let engine = Engine::open(
            &run,
            &ctx,
            target,
            split.as_ref(),
            &registry,
            source,
            &mut summary,
        )
        .await?;
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

/// The split part `part` belongs to: the newest plan of its N, unless this part already
/// carried it out and bronze grew since (or there is none): then the next plan, written once
/// for every part ([`parts`]). The part's target is its range of that plan.
async fn plan_part(
    run: &Run,
    ctx: &SessionContext,
    registry: &Registry,
    plans: &Plans,
    part: Part,
    summary: &mut Summary,
) -> Result<Target> {
    let newest = plans.newest().await?;
    let split = match newest {
        Some((_, split))
            if split.count == part.count && !carried_out(run, &split, part).await? =>
        {
            split
        }
        newest => {
            let (through, months) = months_now(run, ctx, registry).await?;
            match newest {
                Some((_, split)) if split.count == part.count && split.through_batch >= through => {
                    split
                }
                newest => {
                    let number = newest.map_or(1, |(n, _)| n + 1);
                    let cut = Split::cut(&months, part.count, through);
                    plans.create(number, cut).await?
                }
            }
        }
    };
    let range = split.range(part);
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
    summary.detail(
        "part",
        json!({
            "part": part.to_string(),
            "from": range.and_then(|r| day(r.0)),
            "to": range.and_then(|r| day(r.1)),
            "empty": range.is_none(),
            "through_batch": split.through_batch,
        }),
    );
    tracing::info!(
        "part {part} of the split through bronze batch {}: {}",
        split.through_batch,
        match range {
            Some((from, to)) => format!(
                "{} to {}",
                day(from).unwrap_or_else(|| "the start".into()),
                day(to).unwrap_or_else(|| "the end".into())
            ),
            None => "no month left for it".into(),
        }
    );
    let (from, to) = range.unwrap_or((None, None));
    Ok(Target {
        scope: Scope::Range(from, to),
        part: Some(PartOf {
            part,
            empty: range.is_none(),
            plan_batch: split.through_batch,
        }),
        through: None,
    })
}

/// Whether `part` carried `split` out: every table it rebuilds that exists records its marker
/// at the split's batch.
async fn carried_out(run: &Run, split: &Split, part: Part) -> Result<bool> {
    let mut any = false;
    for source in sources::SOURCES {
        for table in source.tables {
            if !matches!(table.kind, Kind::Monthly { .. } | Kind::Daily { .. }) {
                continue;
            }
            if run.lake.table(table.def).await?.is_none() {
                continue;
            }
            any = true;
            let marker = run.lake.txn_version(table.def, &part_txn(part)).await?;
            if marker != Some(split.through_batch) {
                return Ok(false);
            }
        }
    }
    Ok(any)
}

/// The bronze batch a new split reads up to (the lowest consumption mark of any source: every
/// batch up to it is complete in every source), and the records up to it counted by month.
async fn months_now(
    run: &Run,
    ctx: &SessionContext,
    registry: &Registry,
) -> Result<(i64, BTreeMap<lake_runtime::Month, u64>)> {
    let whole = |through| Target {
        scope: Scope::Full,
        part: None,
        through,
    };
    let mut through: Option<i64> = None;
    for source in sources::SOURCES {
        let mut scratch = Summary::default();
        let engine = Engine::open(run, ctx, whole(None), None, registry, source, &mut scratch);
        if let Some(engine) = engine.await? {
            through = Some(through.map_or(engine.mark(), |t| t.min(engine.mark())));
        }
    }
    let through = through.unwrap_or(0);
    let mut months = BTreeMap::new();
    for source in sources::SOURCES {
        let mut scratch = Summary::default();
        let engine = Engine::open(
            run,
            ctx,
            whole(Some(through)),
            None,
            registry,
            source,
            &mut scratch,
        );
        if let Some(engine) = engine.await? {
            for (month, n) in engine.month_counts().await? {
                *months.entry(month).or_insert(0) += n;
            }
        }
    }
    Ok((through, months))
}
