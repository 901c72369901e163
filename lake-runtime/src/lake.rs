//! The lake: Delta tables of the catalogue at their locations under the lake root, and a
//! DataFusion session that knows them by their SQL names (`silver.lastfm_listens`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{MemTable, MemorySchemaProvider};
use datafusion::common::TableReference;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext, ident};
use deltalake::delta_datafusion::DeltaSessionConfig;
use deltalake::delta_datafusion::planner::DeltaPlanner;
use deltalake::kernel::StructType;
use deltalake::kernel::Transaction;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use lake_schema::{ColumnType, Encoding, Layer, TableDef};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use tokio::sync::mpsc;
use url::Url;

use crate::config::LakeConfig;
use crate::error::{LakeError, Result};
use crate::store::Location;

/// How a write treats what a table already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    Append,
    /// Replace the whole table in one commit (readers see the old or the new version).
    Overwrite,
    /// Replace the rows matching this SQL predicate (Delta `replaceWhere`) in one commit, e.g.
    /// some partitions; every row written must match it.
    Replace(String),
}

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
}

/// What a write committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub table: String,
    pub version: u64,
    pub rows: u64,
}

#[derive(Debug, Clone)]
pub struct Lake {
    root: Location,
    parquet: WriterProperties,
}

impl Lake {
    pub async fn open(cfg: &LakeConfig) -> Result<Self> {
        deltalake::aws::register_handlers(None);
        Ok(Self {
            root: Location::open(&cfg.lake, cfg).await?,
            parquet: WriterProperties::builder()
                .set_compression(cfg.parquet_compression)
                .set_max_row_group_row_count(Some(cfg.parquet_row_group_rows))
                .set_created_by(format!(
                    "lakehouse-jobs {} (delta-rs)",
                    env!("CARGO_PKG_VERSION")
                ))
                .build(),
        })
    }

    pub fn root(&self) -> &Location {
        &self.root
    }

    pub fn location(&self, def: &TableDef) -> Result<Location> {
        self.root.child(&def.path())
    }

    pub fn table_url(&self, def: &TableDef) -> Result<Url> {
        Ok(self.location(def)?.url().clone())
    }

    fn builder(&self, def: &TableDef) -> Result<DeltaTableBuilder> {
        let url = self.table_url(def)?;
        let builder = DeltaTableBuilder::from_url(url.clone())
            .map_err(LakeError::delta(def.qualified_name()))?;
        Ok(if self.root.is_local() {
            builder
        } else {
            builder.with_storage_backend(self.root.store().clone(), url)
        })
    }

    /// The table, loaded at its latest version; `None` when it was never written.
    pub async fn table(&self, def: &TableDef) -> Result<Option<DeltaTable>> {
        // Probing a location without a log makes the Delta kernel log an error; look first.
        if !self.location(def)?.child("_delta_log")?.exists().await? {
            return Ok(None);
        }
        let mut table = self
            .builder(def)?
            .build()
            .map_err(LakeError::delta(def.qualified_name()))?;
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(LakeError::delta(def.qualified_name())(e)),
        }
    }

    /// The table's directory when the lake is local.
    fn local_dir(&self, def: &TableDef) -> Result<Option<std::path::PathBuf>> {
        if !self.root.is_local() {
            return Ok(None);
        }
        let url = self.table_url(def)?;
        Ok(url.to_file_path().ok())
    }

    /// The table, created empty with the catalogue's schema when it does not exist yet.
    async fn table_or_create(&self, def: &TableDef) -> Result<DeltaTable> {
        if let Some(table) = self.table(def).await? {
            return Ok(table);
        }
        if let Some(dir) = self.local_dir(def)? {
            std::fs::create_dir_all(&dir).map_err(|e| LakeError::Io {
                location: dir.display().to_string(),
                message: format!("cannot create the table directory: {e}"),
            })?;
        }
        let err = LakeError::delta(def.qualified_name());
        let schema: StructType = def.arrow_schema().try_into_kernel().map_err(|e| {
            LakeError::delta(def.qualified_name())(DeltaTableError::Generic(e.to_string()))
        })?;
        // Column docs stay in the catalogue: per-column comment metadata makes deltalake 1.1
        // refuse later overwrites ("cannot merge metadata").
        let columns = schema.fields().cloned();
        let empty = self
            .builder(def)?
            .build()
            .map_err(LakeError::delta(def.qualified_name()))?;
        let created = empty
            .create()
            .with_table_name(def.qualified_name())
            .with_comment(def.doc.split_whitespace().collect::<Vec<_>>().join(" "))
            .with_columns(columns)
            .with_partition_columns(def.partition_by.iter().copied())
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(table) => Ok(table),
            // another writer created it at the same moment: use theirs
            Err(_) => self.table(def).await?.ok_or_else(|| {
                err(DeltaTableError::Generic(format!(
                    "could not create the table at {}",
                    def.path()
                )))
            }),
        }
    }

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
        let name = def.qualified_name();
        let table = self.table_or_create(def).await?;
        let df = conform(df, def)?;
        explain_analyze(&name, &df).await;
        let have = column_names(&table);
        let want: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
        let schema_changed = have != want;
        if schema_changed && mode != WriteMode::Overwrite {
            return Err(LakeError::delta(name.clone())(DeltaTableError::Generic(
                format!(
                    "the table at {} has columns ({}) but this version of the jobs writes ({}); \
                 move the table away or rebuild it from the layer below",
                    self.table_url(def)?,
                    have.join(", "),
                    want.join(", ")
                ),
            )));
        }
        let mut builder = table
            .write(Vec::<RecordBatch>::new())
            .with_writer_properties(writer_properties(&self.parquet, def));
        if let WriteMode::Replace(predicate) = &mode {
            builder = builder.with_replace_where(predicate.as_str());
        }
        if schema_changed {
            tracing::info!(table = %name, "the catalogue changed this table's columns: replacing its schema in this commit");
            builder = builder.with_schema_mode(SchemaMode::Overwrite);
        }
        let table = builder
            .with_input_plan(df.logical_plan().clone())
            .with_session_state(Arc::new(ctx.state()))
            .with_save_mode(match mode {
                WriteMode::Append => SaveMode::Append,
                WriteMode::Overwrite | WriteMode::Replace(_) => SaveMode::Overwrite,
            })
            .with_commit_properties(
                CommitProperties::default()
                    .with_metadata([("lake.run_id".to_string(), serde_json::json!(commit.run_id))])
                    .with_application_transactions(
                        commit
                            .txns
                            .iter()
                            .map(|(app, v)| Transaction::new(app, *v))
                            .collect(),
                    ),
            )
            .await
            .map_err(LakeError::delta(name.clone()))?;
        let version = table.version().unwrap_or_default();
        let rows = last_commit_rows(&table).await.unwrap_or(0);
        tracing::info!(table = %name, version, rows, "committed");
        crate::fault::point(&format!("committed:{name}"));
        Ok(Written {
            table: name,
            version,
            rows,
        })
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
        let schema = def.arrow_schema();
        let partition = ChannelPartition {
            schema: schema.clone(),
            rx: Mutex::new(Some(batches)),
        };
        let source = StreamingTable::try_new(schema, vec![Arc::new(partition)])
            .map_err(LakeError::query(def.qualified_name()))?;
        let df = ctx
            .read_table(Arc::new(source))
            .map_err(LakeError::query(def.qualified_name()))?;
        self.write(ctx, def, df, mode, commit).await
    }

    /// The version of the application transaction `app_id` the table holds (see [`Commit`]);
    /// `None` when the table does not exist or never recorded one.
    pub async fn txn_version(&self, def: &TableDef, app_id: &str) -> Result<Option<i64>> {
        let Some(table) = self.table(def).await? else {
            return Ok(None);
        };
        let snapshot = table
            .snapshot()
            .map_err(LakeError::delta(def.qualified_name()))?;
        snapshot
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(LakeError::delta(def.qualified_name()))
    }

    /// Registers the table in `ctx` under its qualified name. A table that was never written is
    /// registered empty, with its catalogue schema. Returns the version read.
    pub async fn register(&self, ctx: &SessionContext, def: &TableDef) -> Result<Option<u64>> {
        let reference = TableReference::partial(def.layer.as_str(), def.sql_name());
        ctx.deregister_table(reference.clone())
            .map_err(LakeError::query("deregister"))?;
        let Some(table) = self.table(def).await? else {
            let empty = MemTable::try_new(def.arrow_schema(), vec![vec![]])
                .map_err(LakeError::query(def.qualified_name()))?;
            ctx.register_table(reference, Arc::new(empty))
                .map_err(LakeError::query(def.qualified_name()))?;
            return Ok(None);
        };
        let have = column_names(&table);
        let want: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
        if have != want {
            return Err(LakeError::Config {
                message: format!(
                    "{}: the table at {} has columns ({}) but this version of the jobs reads ({}): \
                     an earlier version wrote it. Rebuild it: silver and gold with --full-refresh; \
                     for bronze and meta, move the lake away and land the landing data again",
                    def.qualified_name(),
                    self.table_url(def)?,
                    have.join(", "),
                    want.join(", ")
                ),
            });
        }
        register_loaded(ctx, def, table, reference).await
    }

    /// Registers the table as it was at a past version or time (Delta time travel) under
    /// `reference`. Returns the version read.
    pub async fn register_as_of(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        as_of: &AsOf,
        reference: TableReference,
    ) -> Result<Option<u64>> {
        let name = def.qualified_name();
        let Some(mut table) = self.table(def).await? else {
            return Err(LakeError::delta(name)(DeltaTableError::Generic(
                "the table has never been written, so it has no past versions".into(),
            )));
        };
        match as_of {
            AsOf::Version(v) => table.load_version(*v).await,
            AsOf::Time(t) => table.load_with_datetime(*t).await,
        }
        .map_err(LakeError::delta(format!("{name} as of {as_of}")))?;
        register_loaded(ctx, def, table, reference).await
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

/// The table's column names, in order.
fn column_names(table: &DeltaTable) -> Vec<String> {
    table
        .snapshot()
        .map(|s| s.schema().fields().map(|f| f.name().to_string()).collect())
        .unwrap_or_default()
}

/// A past state of a table, for time travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    /// The latest version committed at or before this time.
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsOf::Version(v) => write!(f, "version {v}"),
            AsOf::Time(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

async fn register_loaded(
    ctx: &SessionContext,
    def: &TableDef,
    table: DeltaTable,
    reference: TableReference,
) -> Result<Option<u64>> {
    table
        .update_datafusion_session(&ctx.state())
        .map_err(LakeError::delta(def.qualified_name()))?;
    let provider = table
        .table_provider()
        .await
        .map_err(LakeError::query(def.qualified_name()))?;
    ctx.register_table(reference, provider)
        .map_err(LakeError::query(def.qualified_name()))?;
    Ok(table.version())
}

/// The receiving end of a batch stream for [`Lake::write_stream`].
pub type BatchReceiver = mpsc::Receiver<datafusion::error::Result<RecordBatch>>;
/// The sending end of a batch stream for [`Lake::write_stream`].
pub type BatchSender = mpsc::Sender<datafusion::error::Result<RecordBatch>>;

/// A batch channel with room for `depth` batches in flight.
pub fn batch_channel(depth: usize) -> (BatchSender, BatchReceiver) {
    mpsc::channel(depth)
}

/// A one-shot partition whose batches arrive over a channel.
#[derive(Debug)]
struct ChannelPartition {
    schema: SchemaRef,
    rx: Mutex<Option<BatchReceiver>>,
}

impl PartitionStream for ChannelPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rx = self.rx.lock().ok().and_then(|mut rx| rx.take());
        let stream = match rx {
            Some(rx) => futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|batch| (batch, rx))
            })
            .boxed(),
            None => futures::stream::once(async {
                Err(datafusion::error::DataFusionError::Execution(
                    "a streamed input can be read only once".into(),
                ))
            })
            .boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
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

/// With `LAKE_EXPLAIN_ANALYZE` naming the table (or `all`), runs the query that a write is
/// about to run once more on its own and logs its plan with each operator's rows, time and
/// memory: a diagnostic for performance work (the query then runs twice).
async fn explain_analyze(table: &str, df: &DataFrame) {
    let Ok(wanted) = std::env::var("LAKE_EXPLAIN_ANALYZE") else {
        return;
    };
    if wanted != "all" && !wanted.split(',').any(|t| t.trim() == table) {
        return;
    }
    let plan = match df.clone().explain(false, true) {
        Ok(plan) => plan.collect().await,
        Err(e) => Err(e),
    };
    match plan
        .map(|b| datafusion::arrow::util::pretty::pretty_format_batches(&b).map(|t| t.to_string()))
    {
        Ok(Ok(text)) => tracing::info!(table, "EXPLAIN ANALYZE\n{text}"),
        Ok(Err(e)) => tracing::warn!(table, "EXPLAIN ANALYZE could not be shown: {e}"),
        Err(e) => tracing::warn!(table, "EXPLAIN ANALYZE failed: {e}"),
    }
}

/// A DataFusion session with Delta's planner (needed to write), one schema per layer
/// (`bronze`, `silver`, `gold`, `meta`) and the configured memory limit: beyond it, sorts, joins
/// and aggregations spill to files in the system's temporary directory.
pub fn session(cfg: &LakeConfig) -> SessionContext {
    let config: SessionConfig = DeltaSessionConfig::default().into();
    let mut config = config
        .with_information_schema(true)
        .with_default_catalog_and_schema("datafusion", "public");
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = cfg.memory_limit {
        // a sort sets memory aside for merging its spilled runs: a share of a small limit
        let reserve = config.options().execution.sort_spill_reservation_bytes;
        config = config.with_sort_spill_reservation_bytes(reserve.min(limit / 8));
    }
    if let Some(limit) = cfg.memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_query_planner(DeltaPlanner::new());
    match runtime.build_arc() {
        Ok(runtime) => state = state.with_runtime_env(runtime),
        Err(e) => tracing::warn!("no memory limit or spilling for this session: {e}"),
    }
    let ctx = SessionContext::new_with_state(state.build());
    if let Some(catalog) = ctx.catalog("datafusion") {
        for layer in [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Meta] {
            let _ = catalog.register_schema(layer.as_str(), Arc::new(MemorySchemaProvider::new()));
        }
    }
    ctx
}

/// Column `i` of `batch` as plain UTF-8, whatever string type the scan produced
/// (Delta scans return `Utf8View`).
pub fn text_column(
    batch: &RecordBatch,
    i: usize,
) -> std::result::Result<datafusion::arrow::array::StringArray, datafusion::arrow::error::ArrowError>
{
    let array = datafusion::arrow::compute::cast(
        batch.column(i),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )?;
    Ok(datafusion::arrow::array::AsArray::as_string::<i32>(&array).clone())
}

/// Column `i` of `batch` as Int64.
pub fn int64_column(
    batch: &RecordBatch,
    i: usize,
) -> std::result::Result<datafusion::arrow::array::Int64Array, datafusion::arrow::error::ArrowError>
{
    let array = datafusion::arrow::compute::cast(
        batch.column(i),
        &datafusion::arrow::datatypes::DataType::Int64,
    )?;
    Ok(
        datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(
            &array,
        )
        .clone(),
    )
}
