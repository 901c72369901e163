//! Writing a partitioned table with a bounded number of Parquet files open.
//!
//! deltalake's write keeps a Parquet writer open for every partition its input touches until
//! the input ends, each holding its unfinished row group, so its memory grows with the number
//! of partitions a write spans (silver at 10× the Last.fm scale: 2,061 month partitions,
//! 8 GiB). Here a partition's rows go to a file held open for the whole write while the query
//! memory allows; the rows of partitions beyond that are sorted by partition (a sort that
//! spills to disk beyond the memory limit) as they arrive, and written one file at a time once
//! the input ends.
//!
//! The open files take from the query's memory pool what their rows take (up to
//! [`OPEN_FILE_BYTES`] a file, at most half the pool: 102 files at the default 1 GiB limit, all
//! 98 months of the Last.fm listens at 1×), so a small table's files hold next to nothing, and
//! a file whose share the pool refuses (the query that produces the rows needs it) is closed
//! there and then, its partition's later rows going to the sort. A partition thus gets one file,
//! or two when its file had to give way (more beyond the table's target file size). The files
//! added and the files replaced are committed together: one Delta commit per write, with the
//! `replaceWhere` rule (every row written must match the predicate) and the run's transaction
//! markers.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, partition, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionContext};
use delta_kernel::expressions::Scalar;
use deltalake::datafile::writer::{PartitionWriter, PartitionWriterConfig};
use deltalake::kernel::scalars::ScalarExt;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add};
use deltalake::operations::get_num_idx_cols_and_stats_columns;
use deltalake::protocol::DeltaOperation;
use deltalake::table::config::TablePropertiesExt;
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use indexmap::IndexMap;
use lake_schema::TableDef;
use parquet::file::properties::WriterProperties;
use tokio::task::JoinHandle;

use crate::error::LakeError;
use crate::stream::{BatchSender, OnceStream, batch_channel};
use crate::write::{Commit, WriteMode, Written};

/// Most memory counted for a file held open: its unfinished row group (the lake's 122,880
/// rows) with its dictionaries, and the upload buffer in front of the store. Measured: silver
/// at the Last.fm 1K scale with its 98 month files open took 0.35 GiB more than with none.
/// Below that, a file counts the Arrow size of the rows it was given.
const OPEN_FILE_BYTES: usize = 5 << 20;
/// The share of the query memory limit the open files may take; the rest stays with the
/// query that produces the rows and with the sort of the partitions past them.
const OPEN_FILES_SHARE: usize = 2;
/// Most files held open when queries have no memory limit.
const MAX_OPEN_FILES: usize = 256;

/// A writer for one partition's file.
type NewWriter =
    Arc<dyn Fn(IndexMap<String, Scalar>) -> Result<PartitionWriter, DeltaTableError> + Send + Sync>;

/// A partition, by its values in Arrow's row format.
type Key = Box<[u8]>;

/// Rows a file's writer takes at a time: a partition's rows come a few at a time when the
/// input interleaves many partitions, and Parquet's writer pays per call.
const WRITE_ROWS: usize = 8192;

/// A file held open, with its rows not yet handed to its writer.
struct OpenFile {
    writer: PartitionWriter,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The memory this file counts in its write's reservation.
    counted: usize,
}

impl OpenFile {
    async fn flush(&mut self) -> Result<(), DeltaTableError> {
        let rows = match self.pending.len() {
            0 => return Ok(()),
            1 => self.pending.remove(0),
            _ => concat_batches(&self.pending[0].schema(), &self.pending)
                .map_err(|e| DeltaTableError::Generic(e.to_string()))?,
        };
        self.pending.clear();
        self.pending_rows = 0;
        self.writer.write(&rows).await
    }
}

/// The files a write holds open, by partition, and what it has added so far.
struct Files {
    new_writer: NewWriter,
    /// Indices of the columns the files hold (all but the partition columns).
    stored: Vec<usize>,
    open: HashMap<Key, OpenFile>,
    /// What the open files take from the query's memory pool, when they count it (the files
    /// held open for the whole write; the late files, one at a time, do not).
    reservation: Option<MemoryReservation>,
    added: Vec<Add>,
    rows: u64,
}

/// What became of a file after a write.
#[derive(Debug, PartialEq)]
enum Kept {
    Open,
    /// Closed: the pool refused the memory its rows would take.
    GaveWay,
}

impl Files {
    fn new(new_writer: NewWriter, stored: Vec<usize>) -> Self {
        Self {
            new_writer,
            stored,
            open: HashMap::new(),
            reservation: None,
            added: Vec::new(),
            rows: 0,
        }
    }

    /// Files that count their memory in `reservation`.
    fn counted(mut self, reservation: MemoryReservation) -> Self {
        self.reservation = Some(reservation);
        self
    }

    /// Whether the pool has room for one more file at its largest now.
    fn room_for_one_more(&mut self) -> bool {
        match &mut self.reservation {
            Some(r) => r
                .try_grow(OPEN_FILE_BYTES)
                .map(|()| r.shrink(OPEN_FILE_BYTES))
                .is_ok(),
            None => true,
        }
    }

    /// Opens the file of the partition `key`, whose values are `values`.
    fn open(&mut self, key: Key, values: IndexMap<String, Scalar>) -> Result<(), DeltaTableError> {
        let writer = (self.new_writer)(values)?;
        self.open.insert(
            key,
            OpenFile {
                writer,
                pending: Vec::new(),
                pending_rows: 0,
                counted: 0,
            },
        );
        Ok(())
    }

    /// Writes `rows` (all of the partition `key`, whose file is open) into its file; closes
    /// the file when the pool refuses the memory they would add to it.
    async fn write(&mut self, key: &[u8], rows: &RecordBatch) -> Result<Kept, DeltaTableError> {
        let file = self.open.get_mut(key).ok_or_else(|| {
            DeltaTableError::Generic("rows for a partition whose file is not open".into())
        })?;
        let mut stored = rows
            .project(&self.stored)
            .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        self.rows += rows.num_rows() as u64;
        let kept = match &mut self.reservation {
            None => Kept::Open,
            Some(reservation) => {
                // a file held open gathers its rows a few at a time from many input batches:
                // it keeps a copy of its rows, not the batches' string buffers they point into
                stored = compact(&stored).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
                let more = stored
                    .get_array_memory_size()
                    .min(OPEN_FILE_BYTES - file.counted);
                if reservation.try_grow(more).is_ok() {
                    file.counted += more;
                    Kept::Open
                } else {
                    Kept::GaveWay
                }
            }
        };
        file.pending_rows += stored.num_rows();
        file.pending.push(stored);
        if kept == Kept::GaveWay {
            self.close_one(key).await?;
        } else if file.pending_rows >= WRITE_ROWS {
            file.flush().await?;
        }
        Ok(kept)
    }

    /// Closes the file of the partition `key` and gives back the memory it counted.
    async fn close_one(&mut self, key: &[u8]) -> Result<(), DeltaTableError> {
        let Some(file) = self.open.remove(key) else {
            return Ok(());
        };
        self.finish(file).await
    }

    /// Writes what `file` still holds and closes it (or gives it up on a failure).
    async fn finish(&mut self, mut file: OpenFile) -> Result<(), DeltaTableError> {
        if let Some(r) = &mut self.reservation {
            r.shrink(file.counted);
        }
        let closed = match file.flush().await {
            Ok(()) => file.writer.close().await,
            Err(e) => {
                abort(file.writer).await;
                Err(e)
            }
        };
        self.added.extend(closed?);
        Ok(())
    }

    /// Closes every open file; after a failure, gives up the others.
    async fn close(&mut self) -> Result<(), DeltaTableError> {
        let mut failed = None;
        for (_, file) in std::mem::take(&mut self.open) {
            if failed.is_some() {
                abort(file.writer).await;
            } else if let Err(e) = self.finish(file).await {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Gives up the open files (their uploads are aborted; files already closed are orphans
    /// that `lake vacuum` removes), and the memory they counted.
    async fn abort(&mut self) {
        for (_, file) in self.open.drain() {
            abort(file.writer).await;
        }
        if let Some(r) = &mut self.reservation {
            r.free();
        }
    }
}

/// `batch` with its string and binary views copied into buffers of their own (a `take` of
/// views keeps the whole input batch's buffers alive).
fn compact(batch: &RecordBatch) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| -> ArrayRef {
            match c.data_type() {
                DataType::Utf8View => Arc::new(c.as_string_view().gc()),
                DataType::BinaryView => Arc::new(c.as_binary_view().gc()),
                _ => c.clone(),
            }
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

async fn abort(writer: PartitionWriter) {
    if let Err(e) = writer.abort().await {
        tracing::warn!("could not abort an unfinished file's upload: {e}");
    }
}

/// Writes `df` (conformed to `def`, which is partitioned) with a bounded number of files
/// open, and commits the files it adds and the files `mode` replaces in one commit.
pub(crate) async fn write(
    ctx: &SessionContext,
    def: &TableDef,
    table: &DeltaTable,
    df: DataFrame,
    props: WriterProperties,
    mode: &WriteMode,
    commit: &Commit,
) -> crate::Result<Written> {
    let name = def.qualified_name();
    let query_err = LakeError::query(&name);
    let removed = replaced_files(ctx, def, table, mode)?;
    let replaced = match mode {
        WriteMode::Replace(p) => Some((physical(ctx, df.schema(), p, &name)?, p.to_string())),
        _ => None,
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let partition_by: Vec<(String, usize)> = def
        .partition_by
        .iter()
        .map(|c| schema.index_of(c).map(|i| (c.to_string(), i)))
        .collect::<Result<_, _>>()
        .map_err(|e| query_err(e.into()))?;
    let stored: Vec<usize> = (0..schema.fields().len())
        .filter(|i| partition_by.iter().all(|(_, k)| k != i))
        .collect();
    let file_schema = Arc::new(schema.project(&stored).map_err(|e| query_err(e.into()))?);
    let new_writer = file_writers(table, file_schema, props).map_err(LakeError::delta(&name))?;
    let stream = df.execute_stream().await.map_err(&query_err)?;
    let router = Router {
        ctx,
        schema,
        partition_by: &partition_by,
        replaced: replaced.as_ref(),
        name: &name,
    };
    let open = MemoryConsumer::new("open partition files").register(&ctx.runtime_env().memory_pool);
    let (added, rows) = router
        .write(
            stream,
            Files::new(new_writer.clone(), stored.clone()).counted(open),
            Files::new(new_writer, stored),
        )
        .await?;
    let version = commit_files(def, table, mode, commit, removed, added, rows)
        .await
        .map_err(LakeError::delta(&name))?;
    Ok(Written {
        table: name.clone(),
        version,
        rows,
    })
}

/// Sends each partition's rows to a file held open or, past the memory the pool gives open
/// files, to the sort of the partitions written after the input ends.
struct Router<'a> {
    ctx: &'a SessionContext,
    schema: SchemaRef,
    /// The partition columns and their indices in the rows.
    partition_by: &'a [(String, usize)],
    /// With a replace, the rows it replaces (and their text), which every row written must be.
    replaced: Option<&'a (Arc<dyn PhysicalExpr>, String)>,
    name: &'a str,
}

/// Where the partitions met so far go.
struct Routes {
    /// Converts the partition columns to their keys.
    keys: RowConverter,
    /// Each partition met: the index of its open file in `files`, or `None`: sorted late.
    met: HashMap<Key, Option<usize>>,
    files: Vec<Key>,
    max_open: usize,
}

/// The rows of a batch by open file (its index in [`Routes::files`]) and those sorted late,
/// each in batch order.
type Split = (IndexMap<usize, Vec<u32>>, Vec<u32>);

impl Routes {
    /// Splits `batch` between the open files and the late sort, opening a file for each new
    /// partition while the pool has room for it.
    fn split(
        &mut self,
        router: &Router<'_>,
        batch: &RecordBatch,
        open: &mut Files,
    ) -> crate::Result<Split> {
        let rows = self
            .keys
            .convert_columns(&router.partition_columns(batch))
            .map_err(|e| LakeError::query(router.name)(e.into()))?;
        let (mut to_files, mut to_sort) = (IndexMap::<usize, Vec<u32>>::new(), Vec::new());
        let mut last: Option<(usize, Option<usize>)> = None;
        for (i, row) in rows.iter().enumerate() {
            let route = match last {
                Some((at, route)) if rows.row(at) == row => route,
                _ => match self.met.get(row.as_ref()) {
                    Some(route) => *route,
                    None => {
                        let fits = self.files.len() < self.max_open && open.room_for_one_more();
                        let route = if fits {
                            let key: Key = row.as_ref().into();
                            open.open(key.clone(), router.values(batch, i)?)
                                .map_err(LakeError::delta(router.name))?;
                            self.files.push(key);
                            Some(self.files.len() - 1)
                        } else {
                            None
                        };
                        self.met.insert(row.as_ref().into(), route);
                        route
                    }
                },
            };
            last = Some((i, route));
            match route {
                Some(file) => to_files.entry(file).or_default().push(i as u32),
                None => to_sort.push(i as u32),
            }
        }
        Ok((to_files, to_sort))
    }
}

/// The sort of the partitions that found no open file, running while the input arrives.
struct Late {
    tx: BatchSender,
    sorted: JoinHandle<Result<SendableRecordBatchStream, DataFusionError>>,
}

impl Router<'_> {
    /// Writes `stream`: `open` holds the files open for the whole write, `late` writes the
    /// sorted rest one file at a time. The files added and the rows written.
    async fn write(
        &self,
        stream: SendableRecordBatchStream,
        mut open: Files,
        mut late: Files,
    ) -> crate::Result<(Vec<Add>, u64)> {
        let mut sort = None;
        let mut written = self.route(stream, &mut open, &mut sort).await;
        if written.is_ok() {
            written = open.close().await.map_err(LakeError::delta(self.name));
        }
        if let Err(e) = written {
            open.abort().await;
            if let Some(Late { sorted, .. }) = sort {
                sorted.abort();
            }
            return Err(e);
        }
        if let Some(Late { tx, sorted }) = sort {
            drop(tx);
            let stream = match sorted.await {
                Ok(stream) => stream.map_err(LakeError::query(self.name))?,
                Err(e) => {
                    return Err(LakeError::query(self.name)(DataFusionError::External(
                        Box::new(e),
                    )));
                }
            };
            if let Err(e) = self.write_sorted(stream, &mut late).await {
                late.abort().await;
                return Err(e);
            }
        }
        let mut added = open.added;
        added.append(&mut late.added);
        Ok((added, open.rows + late.rows))
    }

    /// Routes every row of `stream` to its partition's open file, opening files while the
    /// pool has room, and the rest to the late sort (started on the first such row).
    async fn route(
        &self,
        mut stream: SendableRecordBatchStream,
        open: &mut Files,
        sort: &mut Option<Late>,
    ) -> crate::Result<()> {
        let query_err = LakeError::query(self.name);
        let max_open = match self.ctx.runtime_env().memory_pool.memory_limit() {
            MemoryLimit::Finite(limit) => limit / OPEN_FILES_SHARE / OPEN_FILE_BYTES,
            MemoryLimit::Infinite | MemoryLimit::Unknown => MAX_OPEN_FILES,
        };
        let mut routes = Routes {
            keys: self.keys()?,
            met: HashMap::new(),
            files: Vec::new(),
            max_open,
        };
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(&query_err)?;
            self.check_replaced(&batch)?;
            let (to_files, to_sort) = routes.split(self, &batch, open)?;
            for (file, rows) in to_files {
                let rows = take_rows(&batch, rows).map_err(|e| query_err(e.into()))?;
                let key = &routes.files[file];
                let kept = open
                    .write(key, &rows)
                    .await
                    .map_err(LakeError::delta(self.name))?;
                if kept == Kept::GaveWay {
                    routes.met.insert(key.clone(), None);
                }
            }
            if to_sort.is_empty() {
                continue;
            }
            let rows = take_rows(&batch, to_sort).map_err(|e| query_err(e.into()))?;
            let late = match sort {
                Some(late) => late,
                None => sort.insert(self.start_sort()?),
            };
            if late.tx.send(Ok(rows)).await.is_err() {
                // the sort ended early: its error is the one to report
                return Err(self.sort_failure(sort.take()).await);
            }
        }
        Ok(())
    }

    /// The converter of the partition columns to Arrow's row format (the partition keys).
    fn keys(&self) -> crate::Result<RowConverter> {
        let fields = self
            .partition_by
            .iter()
            .map(|(_, k)| SortField::new(self.schema.field(*k).data_type().clone()))
            .collect();
        RowConverter::new(fields).map_err(|e| LakeError::query(self.name)(e.into()))
    }

    fn partition_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.partition_by
            .iter()
            .map(|(_, k)| batch.column(*k).clone())
            .collect()
    }

    /// The partition values of the row `row` of `batch`, as Delta records them.
    fn values(&self, batch: &RecordBatch, row: usize) -> crate::Result<IndexMap<String, Scalar>> {
        self.partition_by
            .iter()
            .map(|(c, k)| {
                partition_value(batch.column(*k).as_ref(), row, c).map(|v| (c.clone(), v))
            })
            .collect::<Result<_, _>>()
            .map_err(LakeError::delta(self.name))
    }

    /// Starts the sort by partition of the rows that find no open file: it takes them as they
    /// come (spilling beyond the memory limit) and is read once the input ends.
    fn start_sort(&self) -> crate::Result<Late> {
        let query_err = LakeError::query(self.name);
        let (tx, rx) = batch_channel(2);
        let input = OnceStream::from_channel(self.schema.clone(), rx);
        let input = StreamingTableExec::try_new(
            self.schema.clone(),
            vec![Arc::new(input)],
            None,
            Vec::<LexOrdering>::new(),
            false,
            None,
        )
        .map_err(&query_err)?;
        let keys: Vec<usize> = self.partition_by.iter().map(|(_, k)| *k).collect();
        let sorted = sorted_by_partition(Arc::new(input), &keys)
            .and_then(|sorted| execute_stream(sorted, self.ctx.task_ctx()))
            .map_err(&query_err)?;
        // a sort reads all its input on its first poll: poll it now, so that it takes the rows
        // while they are sent
        let sorted = tokio::spawn(async move {
            let mut sorted = sorted;
            let schema = sorted.schema();
            let first = sorted.next().await.transpose()?;
            let rest: SendableRecordBatchStream = Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::iter(first.map(Ok)).chain(sorted),
                ),
            );
            Ok(rest)
        });
        Ok(Late { tx, sorted })
    }

    /// The error of a sort that stopped taking rows.
    async fn sort_failure(&self, sort: Option<Late>) -> LakeError {
        let error = match sort {
            Some(Late { sorted, .. }) => match sorted.await {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => DataFusionError::Execution("the partition sort ended early".into()),
                Err(e) => DataFusionError::External(Box::new(e)),
            },
            None => DataFusionError::Execution("the partition sort ended early".into()),
        };
        LakeError::query(self.name)(error)
    }

    /// Writes one stream sorted by partition, one file open at a time.
    async fn write_sorted(
        &self,
        mut stream: SendableRecordBatchStream,
        files: &mut Files,
    ) -> crate::Result<()> {
        let query_err = LakeError::query(self.name);
        let keys = self.keys()?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(&query_err)?;
            let columns = self.partition_columns(&batch);
            let rows = keys
                .convert_columns(&columns)
                .map_err(|e| query_err(e.into()))?;
            let runs = partition(&columns).map_err(|e| query_err(e.into()))?;
            for run in runs.ranges() {
                let key = rows.row(run.start);
                if !files.open.contains_key(key.as_ref()) {
                    files.close().await.map_err(LakeError::delta(self.name))?;
                    files
                        .open(key.as_ref().into(), self.values(&batch, run.start)?)
                        .map_err(LakeError::delta(self.name))?;
                }
                files
                    .write(key.as_ref(), &batch.slice(run.start, run.len()))
                    .await
                    .map_err(LakeError::delta(self.name))?;
            }
        }
        files.close().await.map_err(LakeError::delta(self.name))
    }

    /// Stops the write when a row falls outside the rows it replaces: a replace writes only
    /// those.
    fn check_replaced(&self, batch: &RecordBatch) -> crate::Result<()> {
        let Some((predicate, rule)) = self.replaced else {
            return Ok(());
        };
        let matched = predicate
            .evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .map_err(LakeError::query(self.name))?;
        if matched.as_boolean().true_count() == batch.num_rows() {
            return Ok(());
        }
        let name = self.name;
        Err(LakeError::query(name)(DataFusionError::Execution(format!(
            "the write replaces the rows where {rule}, but its input holds rows outside them; \
             this is a bug in the query that builds {name}"
        ))))
    }
}

/// The rows `indices` of `batch` (all of it when they are all of it, in order).
fn take_rows(
    batch: &RecordBatch,
    indices: Vec<u32>,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    if indices.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    take_record_batch(batch, &UInt32Array::from(indices))
}

/// `plan`'s rows (one stream) sorted by the partition columns `keys`, by one sort that spills
/// beyond the memory limit. One sort rather than one per input partition merged: DataFusion 55's
/// sorts of a partitioned input, spilling side by side under one memory pool, failed with
/// "Failed to allocate … for ExternalSorterMerge" (a spilling sort gives its merge memory back
/// to the pool and asks for it again, apache/datafusion#24739).
fn sorted_by_partition(
    plan: Arc<dyn ExecutionPlan>,
    keys: &[usize],
) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    let schema = plan.schema();
    let ordering = keys
        .iter()
        .map(|k| PhysicalSortExpr::new_default(Arc::new(Column::new(schema.field(*k).name(), *k))));
    let ordering = LexOrdering::new(ordering).ok_or_else(|| {
        DataFusionError::Plan("a partitioned table without partition columns".into())
    })?;
    Ok(Arc::new(SortExec::new(ordering, plan)))
}

/// Makes the writer of one partition's files: the table's target file size and statistics
/// columns, the lake's Parquet settings.
fn file_writers(
    table: &DeltaTable,
    file_schema: SchemaRef,
    props: WriterProperties,
) -> Result<NewWriter, DeltaTableError> {
    let config = table.snapshot()?.table_config();
    let target_file_size = Some(config.target_file_size());
    let (indexed, stats_columns) = get_num_idx_cols_and_stats_columns(Some(config), HashMap::new());
    let store = table.log_store().object_store(None);
    Ok(Arc::new(move |values| {
        let config = PartitionWriterConfig::try_new(
            file_schema.clone(),
            values,
            Some(props.clone()),
            target_file_size,
            None,
            None,
            None,
        )?;
        PartitionWriter::try_with_config(store.clone(), config, indexed, stats_columns.clone())
    }))
}

/// Commits the files `added` (`rows` rows) and the removal of the files `removed` as one Delta
/// write, with the run's transaction markers: the new version.
async fn commit_files(
    def: &TableDef,
    table: &DeltaTable,
    mode: &WriteMode,
    commit: &Commit,
    removed: Vec<deltalake::kernel::Remove>,
    added: Vec<Add>,
    rows: u64,
) -> Result<u64, DeltaTableError> {
    let metrics = serde_json::json!({
        "num_added_rows": rows,
        "num_added_files": added.len(),
        "num_removed_files": removed.len(),
    });
    let mut actions: Vec<Action> = removed.into_iter().map(Action::Remove).collect();
    actions.extend(added.into_iter().map(Action::Add));
    let operation = DeltaOperation::Write {
        mode: mode.save_mode(),
        partition_by: Some(def.partition_by.iter().map(|c| c.to_string()).collect()),
        // what conflict checking reads: concurrent replaces of other partitions both land
        predicate: match mode {
            WriteMode::Replace(p) => Some(deltalake::delta_datafusion::expr::fmt_expr_to_sql(p)?),
            _ => None,
        },
    };
    let committed = CommitBuilder::from(commit.properties([("operationMetrics".into(), metrics)]))
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    Ok(committed.version())
}

/// The value of partition column `column` at `row`, as Delta records it.
fn partition_value(array: &dyn Array, row: usize, column: &str) -> Result<Scalar, DeltaTableError> {
    Scalar::from_array(array, row).ok_or_else(|| {
        DeltaTableError::Generic(format!(
            "partition column {column} has a type Delta cannot partition by ({})",
            array.data_type()
        ))
    })
}

/// The files a write in `mode` replaces, as remove actions: every file for an overwrite, the
/// files of the partitions the predicate selects for a replace, none for an append.
fn replaced_files(
    ctx: &SessionContext,
    def: &TableDef,
    table: &DeltaTable,
    mode: &WriteMode,
) -> crate::Result<Vec<deltalake::kernel::Remove>> {
    let name = def.qualified_name();
    let snapshot = table.snapshot().map_err(LakeError::delta(&name))?;
    let files: Vec<_> = snapshot.log_data().iter().collect();
    let predicate = match mode {
        WriteMode::Append => return Ok(Vec::new()),
        WriteMode::Overwrite => return Ok(files.iter().map(|f| f.remove_action(true)).collect()),
        WriteMode::Replace(predicate) => predicate,
    };
    // each file's partition values as typed columns, then the predicate over them
    let arrow = def.arrow_schema();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for column in def.partition_by {
        let field = arrow
            .field_with_name(column)
            .map_err(|e| LakeError::query(&name)(e.into()))?;
        let text: StringArray = files
            .iter()
            .map(|f| f.partition_values_map().get(*column).cloned().flatten())
            .collect();
        columns
            .push(cast(&text, field.data_type()).map_err(|e| LakeError::query(&name)(e.into()))?);
        fields.push(Field::new(*column, field.data_type().clone(), true));
    }
    let values = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| LakeError::query(&name)(e.into()))?;
    let schema = DFSchema::try_from(values.schema()).map_err(LakeError::query(&name))?;
    let selected = physical(ctx, &schema, predicate, &name)?
        .evaluate(&values)
        .and_then(|v| v.into_array(values.num_rows()))
        .map_err(LakeError::query(&name))?;
    let selected = selected.as_boolean();
    Ok(files
        .iter()
        .enumerate()
        .filter(|(i, _)| selected.is_valid(*i) && selected.value(*i))
        .map(|(_, f)| f.remove_action(true))
        .collect())
}

fn physical(
    ctx: &SessionContext,
    schema: &DFSchema,
    predicate: &Expr,
    name: &str,
) -> crate::Result<Arc<dyn PhysicalExpr>> {
    ctx.create_physical_expr(predicate.clone(), schema)
        .map_err(LakeError::query(name))
}

/// Whether [`write`] writes this table in this mode: a partitioned table whose rows replaced
/// (if any) are whole partitions. Anything else goes through deltalake's write, which rewrites
/// files.
pub(crate) fn applies(def: &TableDef, mode: &WriteMode) -> bool {
    if def.partition_by.is_empty() {
        return false;
    }
    match mode {
        WriteMode::Replace(predicate) => predicate
            .column_refs()
            .iter()
            .all(|c| def.partition_by.contains(&c.name.as_str())),
        WriteMode::Append | WriteMode::Overwrite => true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Int32Array, Int64Array, StringViewArray};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
    use datafusion::prelude::{col, lit};
    use lake_schema::{Column, ColumnType, Encoding, Layer};

    use super::*;
    use crate::{Lake, LakeArgs, LakeConfig};

    const fn column(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            ty,
            nullable: false,
            doc: "",
            encoding: Encoding::Default,
        }
    }

    const PLAYS: TableDef = TableDef {
        layer: Layer::Silver,
        source: Some("test"),
        name: "plays",
        doc: "a month-partitioned table",
        columns: &[
            column("n", ColumnType::Int64),
            column("year", ColumnType::Int32),
            column("month", ColumnType::Int32),
        ],
        partition_by: &["year", "month"],
    };

    async fn lake(tag: &str) -> (Lake, SessionContext, std::path::PathBuf) {
        lake_with_memory(tag, None).await
    }

    /// A lake whose queries have `memory_limit`.
    async fn lake_with_memory(
        tag: &str,
        memory_limit: Option<&str>,
    ) -> (Lake, SessionContext, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("lake-clustered-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args = LakeArgs {
            lake: Some(dir.display().to_string()),
            memory_limit: memory_limit.map(str::to_string),
            ..Default::default()
        };
        let cfg = LakeConfig::resolve(&args).expect("a local lake's configuration");
        let lake = Lake::open(&cfg).await.expect("a local lake");
        (lake, crate::session(&cfg), dir)
    }

    /// Rows `n` of (year, month) pairs, in the order given.
    fn rows(ctx: &SessionContext, rows: &[(i64, i32, i32)]) -> DataFrame {
        ctx.read_batch(batch(rows))
            .expect("a data frame of the batch")
    }

    fn batch(rows: &[(i64, i32, i32)]) -> RecordBatch {
        RecordBatch::try_new(
            PLAYS.arrow_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .expect("a batch of the table's schema")
    }

    /// Each partition's files (path → rows).
    async fn files(lake: &Lake) -> BTreeMap<String, BTreeMap<String, usize>> {
        let table = lake.table(&PLAYS).await.ok().flatten().expect("the table");
        let snapshot = table.snapshot().expect("its snapshot");
        let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for f in snapshot.log_data().iter() {
            let p = f.partition_values_map();
            let key = format!(
                "{}-{}",
                p["year"].clone().unwrap_or_default(),
                p["month"].clone().unwrap_or_default()
            );
            out.entry(key)
                .or_default()
                .insert(f.path().to_string(), f.num_records().unwrap_or(0));
        }
        out
    }

    /// Writes the rows over the whole table.
    async fn overwrite(lake: &Lake, ctx: &SessionContext, plays: &[(i64, i32, i32)]) -> Written {
        let rows = rows(ctx, plays);
        let commit = Commit::new("t");
        lake.write(ctx, &PLAYS, rows, WriteMode::Overwrite, &commit)
            .await
            .expect("the write")
    }

    fn month(year: i32, month: i32) -> Expr {
        col("year").eq(lit(year)).and(col("month").eq(lit(month)))
    }

    #[tokio::test]
    async fn rows_of_many_partitions_in_any_order_give_one_file_per_partition() {
        let (lake, ctx, dir) = lake("order").await;
        let interleaved: Vec<(i64, i32, i32)> = (0..300)
            .map(|n| (n, 2005 + (n % 3) as i32, 1 + (n % 2) as i32))
            .collect();
        let written = overwrite(&lake, &ctx, &interleaved).await;
        assert_eq!(written.rows, 300);
        let files = files(&lake).await;
        assert_eq!(files.len(), 6, "{files:?}");
        for (partition, in_it) in &files {
            assert_eq!(in_it.len(), 1, "{partition}: {in_it:?}");
            assert_eq!(in_it.values().sum::<usize>(), 50, "{partition}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn partitions_past_the_open_files_memory_are_sorted_and_still_get_one_file_each() {
        // 32 MiB of query memory: room for three open files; the other 77 partitions are sorted
        let (lake, ctx, dir) = lake_with_memory("late", Some("32MiB")).await;
        let interleaved: Vec<(i64, i32, i32)> = (0..4000)
            .map(|n| (n, 2000 + (n % 40) as i32, 1 + (n % 7 % 2) as i32))
            .collect();
        let written = overwrite(&lake, &ctx, &interleaved).await;
        assert_eq!(written.rows, 4000);
        let files = files(&lake).await;
        let rows: usize = files.values().flat_map(|f| f.values()).sum();
        assert_eq!(rows, 4000);
        assert_eq!(files.len(), 80, "{:?}", files.keys());
        for (partition, in_it) in &files {
            assert_eq!(in_it.len(), 1, "{partition}: {in_it:?}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_file_the_pool_cannot_grow_is_closed_and_its_partition_goes_on_in_the_sort() {
        let (lake, ctx, dir) = lake("give-way").await;
        overwrite(&lake, &ctx, &[(0, 2005, 1)]).await;
        let table = lake.table(&PLAYS).await.ok().flatten().expect("the table");
        // rows alternating 2005-01 and 2005-02, 4 MB of `n` each; the open files get a 6 MiB
        // pool of their own: both open, and the one whose rows pass 6 MiB between them gives
        // way
        let batches: Vec<RecordBatch> = (0..10)
            .map(|b| {
                let plays: Vec<(i64, i32, i32)> = (0..100_000)
                    .map(|n| (b * 100_000 + n, 2005, 1 + (n % 2) as i32))
                    .collect();
                batch(&plays)
            })
            .collect();
        let df = ctx
            .read_batches(batches)
            .expect("a data frame of the batches");
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let partition_by = [("year".to_string(), 1), ("month".to_string(), 2)];
        let file_schema = Arc::new(schema.project(&[0]).expect("the stored column"));
        let new_writer = file_writers(&table, file_schema, WriterProperties::default())
            .expect("the table's file writers");
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(6 << 20));
        let open = Files::new(new_writer.clone(), vec![0])
            .counted(MemoryConsumer::new("open files").register(&pool));
        let router = Router {
            ctx: &ctx,
            schema,
            partition_by: &partition_by,
            replaced: None,
            name: "test.plays",
        };
        let stream = df.execute_stream().await.expect("the rows");
        let (added, rows) = router
            .write(stream, open, Files::new(new_writer, vec![0]))
            .await
            .expect("the write");
        assert_eq!(rows, 1_000_000);
        assert_eq!(
            pool.reserved(),
            0,
            "the open files gave back what they took"
        );
        let mut by_month: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for add in &added {
            let month = add.partition_values["month"].clone().unwrap_or_default();
            let stats = add
                .get_stats()
                .ok()
                .flatten()
                .expect("the file's statistics");
            by_month.entry(month).or_default().push(stats.num_records);
        }
        // one month kept its file; the other's was closed at ~6 MiB / 16 bytes a row, the
        // rest of it sorted into a second file
        let mut months: Vec<&Vec<i64>> = by_month.values().collect();
        months.sort_by_key(|files| files.len());
        assert_eq!(months.len(), 2, "{by_month:?}");
        assert_eq!(months[0], &[500_000], "{by_month:?}");
        let given_way = months[1];
        assert_eq!(given_way.iter().sum::<i64>(), 500_000, "{by_month:?}");
        assert!(
            given_way.len() == 2 && (300_000..450_000).contains(&given_way[0]),
            "{by_month:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rows_kept_for_an_open_file_do_not_hold_their_batch_s_strings() {
        let long: Vec<String> = (0..10_000)
            .map(|n| format!("a song title past twelve bytes {n}"))
            .collect();
        let views = StringViewArray::from_iter_values(long.iter());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "title",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(views)]).expect("a batch");
        let one = take_rows(&batch, vec![7]).expect("one row");
        assert!(
            one.get_array_memory_size() > 300_000,
            "a take keeps the batch's buffers"
        );
        let kept = compact(&one).expect("the row compacted");
        assert!(
            kept.get_array_memory_size() < 1_000,
            "{}",
            kept.get_array_memory_size()
        );
        assert_eq!(kept.column(0).as_string_view().value(0), long[7]);
    }

    #[tokio::test]
    async fn a_replace_removes_the_files_of_its_partitions_and_keeps_the_others() {
        let (lake, ctx, dir) = lake("replace").await;
        overwrite(&lake, &ctx, &[(1, 2005, 1), (2, 2005, 2), (3, 2006, 1)]).await;
        let before = files(&lake).await;
        let again = [(4, 2005, 2), (5, 2005, 2)];
        let replace = WriteMode::Replace(month(2005, 2).or(month(2007, 1)));
        lake.write(&ctx, &PLAYS, rows(&ctx, &again), replace, &Commit::new("t"))
            .await
            .expect("the replace");
        let after = files(&lake).await;
        assert_eq!(after["2005-1"], before["2005-1"]);
        assert_eq!(after["2006-1"], before["2006-1"]);
        assert_eq!(after["2005-2"].values().sum::<usize>(), 2);
        assert_ne!(after["2005-2"], before["2005-2"]);
        assert_eq!(after.len(), 3, "{after:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_row_outside_the_replaced_partitions_stops_the_write_and_leaves_the_table() {
        let (lake, ctx, dir) = lake("outside").await;
        let v0 = overwrite(&lake, &ctx, &[(1, 2005, 1), (2, 2005, 2)])
            .await
            .version;
        let before = files(&lake).await;
        let stray = [(3, 2005, 1), (4, 2005, 2)];
        let replace = WriteMode::Replace(month(2005, 1));
        match lake
            .write(&ctx, &PLAYS, rows(&ctx, &stray), replace, &Commit::new("t"))
            .await
        {
            Err(e) => assert!(e.to_string().contains("rows outside them"), "{e}"),
            Ok(w) => panic!("a replace of 2005-01 wrote a row of 2005-02: {w:?}"),
        }
        let table = lake.table(&PLAYS).await.ok().flatten().expect("the table");
        assert_eq!(table.version(), Some(v0));
        assert_eq!(files(&lake).await, before);
        let _ = std::fs::remove_dir_all(dir);
    }
}
