//! Table maintenance: compaction of small files (OPTIMIZE), Delta checkpoints, and VACUUM of
//! files no version newer than the retention period needs. Each layer's tables are maintained
//! under the lease of the job that writes them, so maintenance and that job never overlap.

use std::time::Duration;

use deltalake::checkpoints::create_checkpoint;
use lake_schema::TableDef;
use serde::Serialize;

use crate::error::{LakeError, Result};
use crate::lake::Lake;

/// What maintaining one table did.
#[derive(Debug, Default, Serialize)]
pub struct Maintained {
    pub table: String,
    /// The table does not exist (yet): nothing was done.
    pub missing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_compacted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_written: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_vacuumed: Option<usize>,
    pub version: Option<u64>,
}

/// What to do to each table.
#[derive(Debug, Clone, Copy)]
pub enum Task {
    /// Rewrite small files into fewer, larger ones (one commit; readers are not disturbed).
    Optimize,
    /// Write a checkpoint of the log at the latest version, so readers replay less of it.
    Checkpoint,
    /// Delete data files that no version younger than `retain` uses (`dry_run`: list them).
    /// Time travel to versions older than `retain` stops working.
    Vacuum { retain: Duration, dry_run: bool },
}

pub async fn maintain(lake: &Lake, def: &TableDef, task: Task) -> Result<Maintained> {
    let name = def.qualified_name();
    let mut done = Maintained {
        table: name.clone(),
        ..Default::default()
    };
    let Some(table) = lake.table(def).await? else {
        done.missing = true;
        return Ok(done);
    };
    let err = LakeError::delta(name.clone());
    match task {
        Task::Optimize => {
            let (table, metrics) = table.optimize().await.map_err(err)?;
            done.files_compacted = Some(metrics.num_files_removed);
            done.files_written = Some(metrics.num_files_added);
            done.version = table.version();
        }
        Task::Checkpoint => {
            create_checkpoint(&table, None).await.map_err(err)?;
            done.checkpoint_version = table.version();
            done.version = table.version();
        }
        Task::Vacuum { retain, dry_run } => {
            let retain = chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
            let (table, metrics) = table
                .vacuum()
                .with_retention_period(retain)
                .with_enforce_retention_duration(false)
                .with_dry_run(dry_run)
                .await
                .map_err(err)?;
            done.files_vacuumed = Some(metrics.files_deleted.len());
            done.version = table.version();
        }
    }
    tracing::info!(table = %name, ?task, "maintained");
    Ok(done)
}
