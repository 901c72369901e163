//! What changed in a table between two of its versions, from its Delta log: the months a job
//! that read an earlier version must read again.

use std::collections::{BTreeSet, HashMap};

use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use lake_schema::TableDef;

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::scope::Month;

/// The most rows [`Lake::same_rows`] compares: beyond, a table counts as changed.
const COMPARED_ROWS: usize = 1_000_000;

impl Lake {
    /// The months whose files differ between version `since` and the latest version of a table
    /// partitioned by `year` and `month` (a file added or removed in a month changes it).
    /// `None` when the table is not partitioned so or does not exist, when `since` cannot be
    /// loaded any more (its log was cleaned up) or a file has no month: read all of it again.
    pub async fn changed_months(
        &self,
        def: &TableDef,
        since: i64,
    ) -> Result<Option<BTreeSet<Month>>> {
        if def.partition_by != ["year", "month"] {
            return Ok(None);
        }
        let (Some(now), Ok(since)) = (self.table(def).await?, u64::try_from(since)) else {
            return Ok(None);
        };
        let mut then = now.clone();
        if then.load_version(since).await.is_err() {
            return Ok(None);
        }
        let name = def.qualified_name();
        let (then, now) = (files(&then, &name)?, files(&now, &name)?);
        let changed = then
            .iter()
            .filter(|(path, _)| !now.contains_key(*path))
            .chain(now.iter().filter(|(path, _)| !then.contains_key(*path)))
            .map(|(_, month)| *month);
        Ok(changed.collect())
    }

    /// Whether version `since` and the latest version of a table hold the same rows (a
    /// rebuild that changed nothing, e.g. silver's users rebuilt when only plays came), for a
    /// table of at most a million rows; a bigger one, or one whose version `since` cannot be
    /// loaded, counts as changed. Compared in `ctx`, a session of this process.
    pub async fn same_rows(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        since: i64,
    ) -> Result<bool> {
        self.attach(&ctx.runtime_env());
        let (Some(now), Ok(since)) = (self.table(def).await?, u64::try_from(since)) else {
            return Ok(false);
        };
        let name = def.qualified_name();
        let snapshot = now.snapshot().map_err(LakeError::delta(&name))?;
        let rows: usize = snapshot
            .log_data()
            .iter()
            .filter_map(|f| f.num_records())
            .sum();
        let mut then = now.clone();
        if rows > COMPARED_ROWS || then.load_version(since).await.is_err() {
            return Ok(false);
        }
        let err = LakeError::query(format!("{name} against version {since}"));
        let then = ctx
            .read_table(then.table_provider().await.map_err(&err)?)
            .map_err(&err)?;
        let now = ctx
            .read_table(now.table_provider().await.map_err(&err)?)
            .map_err(&err)?;
        let differ = now
            .clone()
            .except(then.clone())
            .and_then(|added| then.except(now).and_then(|gone| added.union(gone)))
            .map_err(&err)?
            .count()
            .await
            .map_err(&err)?;
        Ok(differ == 0)
    }
}

/// The table's files at its loaded version, each with its month (`None` when its partition
/// values do not name one).
fn files(table: &DeltaTable, name: &str) -> Result<HashMap<String, Option<Month>>> {
    let snapshot = table.snapshot().map_err(LakeError::delta(name))?;
    Ok(snapshot
        .log_data()
        .iter()
        .map(|f| {
            let values = f.partition_values_map();
            let part = |k: &str| values.get(k).cloned().flatten();
            let month = part("year")
                .and_then(|y| y.parse().ok())
                .zip(part("month").and_then(|m| m.parse().ok()))
                .map(|(year, month)| Month { year, month });
            (f.path().to_string(), month)
        })
        .collect())
}
