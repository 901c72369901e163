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
//! months of a date range of the month-partitioned tables, each table in one commit.

mod engine;
pub mod source;
pub mod sources;

use std::sync::Arc;

use lake_runtime::{Result, Run, Scope, Summary, session};

pub async fn run(run: Arc<Run>, scope: Scope) -> Result<Summary> {
    let ctx = session(&run.cfg);
    let mut summary = Summary::default();
    summary.detail("scope", format!("{scope:?}"));
    let mut built = 0;
    for source in sources::SOURCES {
        if let Some(engine) = engine::Engine::open(&run, &ctx, scope, source, &mut summary).await? {
            engine.build(&mut summary).await?;
            built += 1;
        }
    }
    if built == 0 {
        tracing::warn!("no bronze tables in {} yet: run bronze first", run.cfg.lake);
    }
    Ok(summary)
}
