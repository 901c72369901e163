//! Gold and ad-hoc SQL on an Apache DataFusion Ballista cluster (the `cluster` feature).
//!
//! deltalake cannot ship its Delta scan to executors, so a Delta table is resolved here, on the
//! client, as its current snapshot: the Parquet files of that version with their partition
//! values ([`SnapshotTable`]). The [`LakeCodec`] carries that list inside the logical plan to
//! the scheduler, which plans an ordinary Parquet scan of exactly those files; executors read
//! them from the object store. Reads stay snapshot-consistent; writes stay in the job process,
//! which streams the results back and commits them as Delta.
//!
//! The cluster's processes are the project's own ([`scheduler`], [`executor`], run by
//! `lake cluster scheduler|executor`): Ballista's scheduler and executor with the lake's codec,
//! its SQL functions and its object store.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::common::{DataFusionError, TableReference};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use deltalake::DeltaTable;
use futures::TryStreamExt;
use lake_schema::TableDef;
use serde::{Deserialize, Serialize};

use crate::config::LakeConfig;
use crate::error::{LakeError, Result};
use crate::lake::Lake;

/// A Delta table as one version's Parquet files, scanned by any DataFusion (here: Ballista's
/// scheduler and executors) without deltalake.
#[derive(Debug, Clone)]
pub struct SnapshotTable {
    schema: SchemaRef,
    files: Files,
}

/// What travels in the plan: the store and the files, each with its partition values (as
/// Delta writes them, text; `None` is null) in the order of the table's partition columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Files {
    store: String,
    partition_columns: Vec<String>,
    files: Vec<File>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct File {
    path: String,
    size: u64,
    partition_values: Vec<Option<String>>,
}

impl SnapshotTable {
    /// The files of `table`'s loaded version (`None`: never written, no files).
    pub async fn of(lake: &Lake, def: &TableDef, table: Option<&DeltaTable>) -> Result<Self> {
        let name = def.qualified_name();
        let url = lake.table_url(def)?;
        let store = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        let prefix = url.path().trim_matches('/').to_string();
        let mut files = Vec::new();
        if let Some(table) = table {
            let snapshot = table.snapshot().map_err(LakeError::delta(&name))?;
            let views: Vec<_> = snapshot
                .snapshot()
                .file_views(table.log_store().as_ref(), None)
                .try_collect()
                .await
                .map_err(LakeError::delta(&name))?;
            for view in views {
                let values = view.partition_values();
                let partition_values = def
                    .partition_by
                    .iter()
                    .map(|column| {
                        let data = values.as_ref()?;
                        let at = data.fields().iter().position(|f| f.name() == *column)?;
                        let value = data.values().get(at)?;
                        (!value.is_null()).then(|| value.to_string())
                    })
                    .collect();
                files.push(File {
                    path: format!("{prefix}/{}", view.path()),
                    size: view.size().max(0) as u64,
                    partition_values,
                });
            }
        }
        Ok(Self {
            schema: def.arrow_schema(),
            files: Files {
                store,
                partition_columns: def.partition_by.iter().map(|c| c.to_string()).collect(),
                files,
            },
        })
    }

    fn from_plan(schema: SchemaRef, files: Files) -> Self {
        Self { schema, files }
    }

    /// The data files' schema (the table's columns but the partition columns) and the
    /// partition columns' fields.
    fn schemas(&self) -> (SchemaRef, Vec<FieldRef>) {
        let partitioned = |f: &FieldRef| self.files.partition_columns.contains(f.name());
        let data: Vec<FieldRef> = self
            .schema
            .fields()
            .iter()
            .filter(|f| !partitioned(f))
            .cloned()
            .collect();
        let partitions = self
            .files
            .partition_columns
            .iter()
            .filter_map(|c| self.schema.field_with_name(c).ok())
            .map(|f| Arc::new(Field::new(f.name(), f.data_type().clone(), true)))
            .collect();
        (Arc::new(Schema::new(data)), partitions)
    }
}

#[async_trait]
impl TableProvider for SnapshotTable {
    /// The data columns, then the partition columns (the catalogue puts them last too).
    fn schema(&self) -> SchemaRef {
        let (data, partitions) = self.schemas();
        let mut fields: Vec<FieldRef> = data.fields().iter().cloned().collect();
        fields.extend(partitions);
        Arc::new(Schema::new(fields))
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let (data, partitions) = self.schemas();
        let groups = state.config().target_partitions().max(1);
        let mut files: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups];
        for (i, f) in self.files.files.iter().enumerate() {
            let mut file = PartitionedFile::new(f.path.clone(), f.size);
            file.partition_values = partitions
                .iter()
                .zip(&f.partition_values)
                .map(|(field, value)| match value {
                    Some(v) => ScalarValue::try_from_string(v.clone(), field.data_type()),
                    None => ScalarValue::try_from(field.data_type()),
                })
                .collect::<datafusion::error::Result<_>>()?;
            files[i % groups].push(file);
        }
        let groups: Vec<FileGroup> = files
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(FileGroup::new)
            .collect();
        let schema = TableSchema::builder(data)
            .with_table_partition_cols(partitions)
            .build();
        let source = ParquetSource::new(schema);
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.files.store)?, Arc::new(source))
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// Ballista's logical codec, which also carries a [`SnapshotTable`] (as JSON after a tag) and
/// the small in-memory tables the jobs make of their own figures (`read_batch`; as Arrow IPC).
#[derive(Debug, Default)]
pub struct LakeCodec {
    ballista: BallistaLogicalExtensionCodec,
}

const TAG: &[u8] = b"lake-snapshot-table:";
const MEMORY_TAG: &[u8] = b"lake-memory-table:";

/// A memory table's rows as one Arrow IPC stream (partitions are not kept: it is small).
fn encode_memory(table: &MemTable, buf: &mut Vec<u8>) -> datafusion::error::Result<()> {
    let schema = table.schema();
    let mut writer = StreamWriter::try_new(buf, &schema)?;
    for partition in &table.batches {
        let batches = partition.try_read().map_err(|e| {
            DataFusionError::Internal(format!("a memory table being written to: {e}"))
        })?;
        for batch in batches.iter() {
            writer.write(batch)?;
        }
    }
    writer.finish()?;
    Ok(())
}

fn decode_memory(buf: &[u8], schema: SchemaRef) -> datafusion::error::Result<MemTable> {
    let reader = StreamReader::try_new(buf, None)?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    MemTable::try_new(schema, vec![batches])
}

impl LogicalExtensionCodec for LakeCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> datafusion::error::Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> datafusion::error::Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        if let Some(json) = buf.strip_prefix(TAG) {
            let files: Files = serde_json::from_slice(json)
                .map_err(|e| DataFusionError::Internal(format!("{table_ref}: {e}")))?;
            return Ok(Arc::new(SnapshotTable::from_plan(schema, files)));
        }
        if let Some(ipc) = buf.strip_prefix(MEMORY_TAG) {
            return Ok(Arc::new(decode_memory(ipc, schema)?));
        }
        self.ballista
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> datafusion::error::Result<()> {
        if let Some(table) = node.downcast_ref::<SnapshotTable>() {
            buf.extend_from_slice(TAG);
            return serde_json::to_writer(buf, &table.files)
                .map_err(|e| DataFusionError::Internal(format!("{table_ref}: {e}")));
        }
        if let Some(table) = node.downcast_ref::<MemTable>() {
            buf.extend_from_slice(MEMORY_TAG);
            return encode_memory(table, buf);
        }
        self.ballista
            .try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> datafusion::error::Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>>
    {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> datafusion::error::Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
}

/// Partitions of a cluster query's stages (scan file groups, shuffles): a task each, so a
/// stage keeps up to that many task slots busy across the executors.
const CLUSTER_PARTITIONS: usize = 16;

/// The session of a job or `lake sql` whose queries run on the cluster at `scheduler`
/// (`df://host:50050`): the local session's settings and functions, Ballista's planner and the
/// lake's codec. Tables must be registered as [`SnapshotTable`]s (see [`Lake::on_cluster`]).
pub async fn remote_session(cfg: &LakeConfig, scheduler: &str) -> Result<SessionContext> {
    let local = crate::session::session(cfg);
    let state = local.state();
    // enough tasks per stage for every executor's slots
    let mut config = state
        .config()
        .clone()
        .with_target_partitions(CLUSTER_PARTITIONS)
        .with_ballista_logical_extension_codec(Arc::new(LakeCodec::default()));
    // a sort placed below a repartition keeps its order in one process, not across a
    // shuffle: window functions (the charts' rank()) would get unordered input
    config.options_mut().optimizer.repartition_sorts = false;
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    let err = |e: DataFusionError| LakeError::Config {
        message: format!("cannot use the Ballista scheduler at {scheduler}: {e}"),
    };
    let ctx = SessionContext::remote_with_state(scheduler, state)
        .await
        .map_err(err)?;
    // Ballista's session has its own functions and schemas: the lake's go back in
    crate::session::equip(&ctx);
    Ok(ctx)
}

/// The lake's SQL functions, for the cluster's processes.
fn functions() -> BallistaFunctionRegistry {
    let ctx = SessionContext::new();
    crate::functions::register(&ctx);
    let mut registry = BallistaFunctionRegistry::default();
    for (name, udf) in ctx.state().scalar_functions() {
        registry.scalar_functions.insert(name.clone(), udf.clone());
    }
    registry
}

/// Runs a Ballista scheduler on `bind` with the lake's codec and functions, until stopped.
pub async fn scheduler(bind: SocketAddr) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let session_builder: ballista_scheduler::scheduler_server::SessionBuilder =
        Arc::new(|config| {
            let state = datafusion::execution::SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .build();
            let ctx = SessionContext::new_with_state(state);
            crate::functions::register(&ctx);
            Ok(ctx.state())
        });
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        override_logical_codec: Some(Arc::new(LakeCodec::default())),
        override_session_builder: Some(session_builder),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_error("the scheduler's state"))?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(ballista_error("the scheduler"))
}

/// Where an executor listens and whom it serves.
#[derive(Debug, Clone)]
pub struct ExecutorArgs {
    /// The scheduler's host and port.
    pub scheduler: (String, u16),
    pub bind_host: String,
    /// The host the scheduler and the other executors reach it at.
    pub external_host: String,
    /// Its Arrow Flight port (results and shuffles) and gRPC port (tasks).
    pub port: u16,
    pub grpc_port: u16,
    /// Task slots (0: its cores).
    pub tasks: usize,
}

/// Runs a Ballista executor that reads the lake's object store, until stopped.
pub async fn executor(cfg: &LakeConfig, args: ExecutorArgs) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    let lake = Lake::open(cfg).await?;
    let runtime: ballista_core::RuntimeProducer = Arc::new(move |_config| {
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new().build_arc()?;
        lake.attach(&runtime);
        Ok(runtime)
    });
    let config = ExecutorProcessConfig {
        bind_host: args.bind_host,
        external_host: Some(args.external_host),
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler.0,
        scheduler_port: args.scheduler.1,
        vcores: args.tasks,
        override_logical_codec: Some(Arc::new(LakeCodec::default())),
        override_function_registry: Some(Arc::new(functions())),
        override_runtime_producer: Some(runtime),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista_error("the executor"))
}

fn ballista_error(what: &'static str) -> impl Fn(ballista_core::error::BallistaError) -> LakeError {
    move |e| LakeError::Config {
        message: format!("{what} stopped: {e}"),
    }
}
