//! The SQL files of the jobs, views over them, and reading query results by column name.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::prelude::{DataFrame, SessionContext};

use crate::error::{LakeError, Result};

/// A SQL file of a job, compiled into its binary by [`sql!`](crate::sql!).
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    /// The file's name under the job's `sql/` folder, without `.sql` (`lastfm_listens`,
    /// `plays/lastfm`); a checked view is registered under this name.
    pub name: &'static str,
    /// The file, relative to the workspace, for messages (`jobs/silver/sql/lastfm_listens.sql`).
    pub path: &'static str,
    pub text: &'static str,
}

impl Sql {
    /// Plans the query.
    pub async fn plan(&self, ctx: &SessionContext) -> Result<DataFrame> {
        ctx.sql(self.text)
            .await
            .map_err(LakeError::query(self.path))
    }
}

/// `sql!("lastfm_listens")`: the file `sql/lastfm_listens.sql` of the calling job's crate.
#[macro_export]
macro_rules! sql {
    ($name:literal) => {
        $crate::sql!(concat!("jobs/", env!("CARGO_PKG_NAME")), $name)
    };
    ($crate_dir:expr, $name:literal) => {
        $crate::Sql {
            name: $name,
            path: concat!($crate_dir, "/sql/", $name, ".sql"),
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/", $name, ".sql")),
        }
    };
}

/// Registers `df` as the view `name` for the queries that follow, replacing one of that name.
pub fn register_view(ctx: &SessionContext, name: &str, df: DataFrame) -> Result<()> {
    register_as(ctx, name, df.into_view())
}

/// Registers `table` under `name` for the queries that follow, replacing one of that name.
pub fn register_as(
    ctx: &SessionContext,
    name: &str,
    table: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
) -> Result<()> {
    let err = LakeError::query(format!("registering {name}"));
    ctx.deregister_table(name).map_err(&err)?;
    ctx.register_table(name, table).map_err(err)?;
    Ok(())
}

/// The column `name` of `batch`.
fn column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> std::result::Result<&'a datafusion::arrow::array::ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("the result has no column {name}")))
}

/// The column `name` of `batch` as plain UTF-8, whatever string type the scan produced (Delta
/// scans return `Utf8View`).
pub fn text_column(
    batch: &RecordBatch,
    name: &str,
) -> std::result::Result<StringArray, ArrowError> {
    let array = cast(column(batch, name)?, &DataType::Utf8)?;
    Ok(array.as_string::<i32>().clone())
}

/// The column `name` of `batch` as Int64, whatever integer type it has.
pub fn int64_column(
    batch: &RecordBatch,
    name: &str,
) -> std::result::Result<Int64Array, ArrowError> {
    let array = cast(column(batch, name)?, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().clone())
}

/// Integers by name, from a query that returns one row of them.
#[derive(Debug, Default, Clone)]
pub struct Counts(BTreeMap<String, i64>);

impl Counts {
    /// The value of column `name`; 0 when the result was empty, null or had no such column.
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &i64)> {
        self.0.iter()
    }
}

/// Runs a query that returns one row of integers (counts, a maximum) and returns them by
/// column name; a null or an empty result reads as 0.
pub async fn counts(df: DataFrame, context: &str) -> Result<Counts> {
    let err = LakeError::query(context);
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = df.collect().await.map_err(&err)?;
    let row = batches.iter().find(|b| b.num_rows() > 0);
    let mut out = BTreeMap::new();
    for name in names {
        let value = match row {
            Some(b) => {
                let values = int64_column(b, &name).map_err(|e| err(e.into()))?;
                if values.is_null(0) {
                    0
                } else {
                    values.value(0)
                }
            }
            None => 0,
        };
        out.insert(name, value);
    }
    Ok(Counts(out))
}
