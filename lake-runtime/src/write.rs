//! Writing a table: every write is one Delta commit, which records the run that made it and the
//! application transactions that say what the table now holds.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext, ident};
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use lake_schema::{ColumnType, Encoding, TableDef};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{LakeError, Result};
use crate::explain::explain_analyze;
use crate::lake::{Lake, column_names};
use crate::stream::{BatchReceiver, OnceStream};

/// How a write treats what a table already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    Append,
    /// Replace the whole table in one commit (readers see the old or the new version).
    Overwrite,
    /// Replace the rows matching this predicate (Delta `replaceWhere`) in one commit, e.g.
    /// some partitions; every row written must match it.
    Replace(Expr),
}

impl WriteMode {
    /// Delta's name for it: a replace is an overwrite with a predicate.
    pub(crate) fn save_mode(&self) -> SaveMode {
        match self {
            WriteMode::Append => SaveMode::Append,
            WriteMode::Overwrite | WriteMode::Replace(_) => SaveMode::Overwrite,
        }
    }
}

/// The Delta application id under which every bronze table records the last batch it holds.
pub const BRONZE_TXN: &str = "lake.bronze";

/// The Delta application id under which each silver table records the last bronze batch it
/// includes.
pub const SILVER_TXN: &str = "lake.silver";

/// The Delta application id prefix under which each gold table records the version of each
/// silver table it was computed from (`lake.gold:silver.lastfm_listens`).
pub const GOLD_TXN: &str = "lake.gold";

/// What a commit records besides its rows: the run that made it, and the Delta application
/// transactions (`txn` actions) it sets. A transaction `(app_id, version)` says "this table
/// holds everything of `app_id` up to `version`" and commits atomically with the rows, which is
/// how a job re-run after a crash knows what each table already has.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub run_id: String,
    pub txns: Vec<(String, i64)>,
}

impl Commit {
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            txns: Vec::new(),
        }
    }

    pub fn txn(mut self, app_id: impl Into<String>, version: i64) -> Self {
        self.txns.push((app_id.into(), version));
        self
    }

    /// The commit's properties, with `metadata` besides the run id in its commit info.
    pub(crate) fn properties(
        &self,
        metadata: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> CommitProperties {
        let run = ("lake.run_id".to_string(), serde_json::json!(self.run_id));
        CommitProperties::default()
            .with_metadata(std::iter::once(run).chain(metadata))
            .with_application_transactions(
                self.txns
                    .iter()
                    .map(|(app, v)| Transaction::new(app, *v))
                    .collect(),
            )
    }
}

/// What a write committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub table: String,
    pub version: u64,
    pub rows: u64,
}

impl Lake {
    /// Writes `df` to the table in one commit. Columns are taken by name and cast to the
    /// catalogue's types, so a query only has to produce the right names.
    pub async fn write(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        #[cfg(feature = "cluster")]
        if self.snapshot_scans {
            return self.write_from_cluster(def, df, mode, commit).await;
        }
        let name = def.qualified_name();
        let table = self.table_or_create(def).await?;
        let df = conform(df, def)?;
        explain_analyze(&name, &df).await;
        let schema_changed = self.schema_changed(def, &table, &mode)?;
        let props = writer_properties(&self.parquet, def);
        let written = if !schema_changed && crate::clustered::applies(def, &mode) {
            crate::clustered::write(ctx, def, &table, df, props, &mode, commit).await?
        } else {
            write_with_deltalake(ctx, def, table, df, props, mode, schema_changed, commit).await?
        };
        tracing::info!(table = %name, version = written.version, rows = written.rows, "committed");
        crate::fault::point(&format!("committed:{name}"));
        Ok(written)
    }

    /// Whether the table's columns differ from the catalogue's: only an overwrite may then
    /// replace its schema; anything else stops with what to do.
    fn schema_changed(&self, def: &TableDef, table: &DeltaTable, mode: &WriteMode) -> Result<bool> {
        let have = column_names(def, table)?;
        let want: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
        let changed = have != want;
        if changed && *mode != WriteMode::Overwrite {
            return Err(LakeError::delta(def.qualified_name())(
                DeltaTableError::Generic(format!(
                    "the table at {} has columns ({}) but this version of the jobs writes ({}); \
                     move the table away or rebuild it from the layer below",
                    self.table_url(def)?,
                    have.join(", "),
                    want.join(", ")
                )),
            ));
        }
        Ok(changed)
    }

    /// Writes a stream of batches (sent by a producer, e.g. a parser thread) to the table in
    /// one commit, without holding the stream in memory. The batches must have the table's
    /// catalogue schema.
    pub async fn write_stream(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        batches: BatchReceiver,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        let partition = OnceStream::from_channel(def.arrow_schema(), batches);
        self.write_once(ctx, def, partition, mode, commit).await
    }

    /// Writes the rows of a one-shot stream (see [`Lake::write`]).
    async fn write_once(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        partition: OnceStream,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        let schema = partition.schema().clone();
        let source = StreamingTable::try_new(schema, vec![Arc::new(partition)])
            .map_err(LakeError::query(def.qualified_name()))?;
        let df = ctx
            .read_table(Arc::new(source))
            .map_err(LakeError::query(def.qualified_name()))?;
        self.write(ctx, def, df, mode, commit).await
    }

    /// [`Lake::write`] of a query that runs on a cluster: deltalake's write plan cannot travel
    /// there, so the query runs there and its rows stream back into a write planned here.
    #[cfg(feature = "cluster")]
    async fn write_from_cluster(
        &self,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        let name = def.qualified_name();
        let stream = conform(df, def)?
            .execute_stream()
            .await
            .map_err(LakeError::query(&name))?;
        // deltalake's write plan needs its planner
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .build();
        let local = SessionContext::new_with_state(state);
        let mut here = self.clone();
        here.snapshot_scans = false;
        let partition = OnceStream::from_stream(stream);
        Box::pin(here.write_once(&local, def, partition, mode, commit)).await
    }
}

/// The lake's Parquet settings with the table's column encodings from the catalogue.
fn writer_properties(lake: &WriterProperties, def: &TableDef) -> WriterProperties {
    def.columns
        .iter()
        .filter(|c| c.encoding == Encoding::Delta)
        .fold(lake.clone().into_builder(), |props, c| {
            let encoding = match c.ty {
                ColumnType::Text => parquet::basic::Encoding::DELTA_BYTE_ARRAY,
                _ => parquet::basic::Encoding::DELTA_BINARY_PACKED,
            };
            let path = ColumnPath::from(c.name);
            props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, encoding)
        })
        .build()
}

/// deltalake's write: for unpartitioned tables, replaces of rows within partitions, and
/// commits that replace the table's schema.
#[allow(clippy::too_many_arguments)]
async fn write_with_deltalake(
    ctx: &SessionContext,
    def: &TableDef,
    table: DeltaTable,
    df: DataFrame,
    props: WriterProperties,
    mode: WriteMode,
    schema_changed: bool,
    commit: &Commit,
) -> Result<Written> {
    let name = def.qualified_name();
    let mut builder = table
        .write(Vec::<RecordBatch>::new())
        .with_writer_properties(props);
    if let WriteMode::Replace(predicate) = &mode {
        builder = builder.with_replace_where(predicate.clone());
    }
    if schema_changed {
        tracing::info!(table = %name, "the catalogue changed this table's columns: replacing its schema in this commit");
        builder = builder.with_schema_mode(SchemaMode::Overwrite);
    }
    let table = builder
        .with_input_plan(df.logical_plan().clone())
        .with_session_state(Arc::new(ctx.state()))
        .with_save_mode(mode.save_mode())
        .with_commit_properties(commit.properties([]))
        .await
        .map_err(LakeError::delta(name.clone()))?;
    Ok(Written {
        version: table.version().unwrap_or_default(),
        rows: last_commit_rows(&table).await.unwrap_or(0),
        table: name,
    })
}

/// Number of rows the table's latest commit added, from its commit metrics.
async fn last_commit_rows(table: &DeltaTable) -> Option<u64> {
    let mut history = table.history(Some(1));
    let info = history.next().await?.ok()?;
    info.info
        .get("operationMetrics")
        .and_then(|m| m.get("num_added_rows"))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
}

/// Selects the catalogue's columns from `df` by name, cast to the catalogue's types (string views
/// stay views: they are the same strings to Delta and Parquet).
pub fn conform(df: DataFrame, def: &TableDef) -> Result<DataFrame> {
    let have: HashSet<&str> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let missing: Vec<&str> = def
        .columns
        .iter()
        .map(|c| c.name)
        .filter(|n| !have.contains(n))
        .collect();
    if !missing.is_empty() {
        return Err(LakeError::query(def.qualified_name())(
            datafusion::error::DataFusionError::Plan(format!(
                "the query for {} does not produce column(s) {}",
                def.qualified_name(),
                missing.join(", ")
            )),
        ));
    }
    let schema = df.schema().clone();
    let exprs = def.columns.iter().map(|c| {
        let want = c.ty.arrow();
        // string views (what scans produce) are written as they are: Parquet stores both
        // string types alike, and a cast would copy every string
        let is_view = schema
            .field_with_unqualified_name(c.name)
            .is_ok_and(|f| f.data_type() == &DataType::Utf8View);
        if want == DataType::Utf8 && is_view {
            ident(c.name)
        } else {
            datafusion::logical_expr::cast(ident(c.name), want).alias(c.name)
        }
    });
    df.select(exprs.collect::<Vec<_>>())
        .map_err(LakeError::query(def.qualified_name()))
}
