//! Writing a partitioned table with one Parquet file open at a time.
//!
//! deltalake's write keeps a Parquet writer open for every partition its input touches until
//! the input ends, each holding its unfinished row group, so its memory grows with the number
//! of partitions a write spans (silver at 10× the Last.fm scale: 2,061 month partitions,
//! 8 GiB). Here the rows are sorted by partition first (a sort that spills to disk beyond the
//! memory limit), each partition's file is closed when the next partition starts, and the
//! files added and the files replaced are committed together: one Delta commit per write, as
//! before, with the same `replaceWhere` rule (every row written must match the predicate) and
//! the same transaction markers.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::{SortOptions, cast, partition};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::sorts::sort::SortExec;
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

use crate::copies::{Copies, CopyFilter};
use crate::error::LakeError;
use crate::write::{Commit, Stamp, WriteMode, Written};

/// A writer for one partition's file.
type NewWriter =
    Box<dyn Fn(IndexMap<String, Scalar>) -> Result<PartitionWriter, DeltaTableError> + Send + Sync>;

/// The file of the partition being written, and what the write has added so far.
struct Files {
    new_writer: NewWriter,
    /// Indices of the columns the files hold (all but the partition columns).
    stored: Vec<usize>,
    open: Option<(IndexMap<String, Scalar>, PartitionWriter)>,
    added: Vec<Add>,
    rows: u64,
}

impl Files {
    /// Writes `rows` (all of one partition, `values`) into that partition's open file, first
    /// closing the previous partition's.
    async fn write(
        &mut self,
        values: IndexMap<String, Scalar>,
        rows: &RecordBatch,
    ) -> Result<(), DeltaTableError> {
        if self.open.as_ref().is_some_and(|(open, _)| *open != values) {
            self.close().await?;
        }
        let (_, writer) = match &mut self.open {
            Some(open) => open,
            None => {
                let writer = (self.new_writer)(values.clone())?;
                self.open.insert((values, writer))
            }
        };
        let stored = rows
            .project(&self.stored)
            .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        writer.write(&stored).await?;
        self.rows += rows.num_rows() as u64;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), DeltaTableError> {
        if let Some((_, writer)) = self.open.take() {
            self.added.extend(writer.close().await?);
        }
        Ok(())
    }

    /// Gives up the open file (its upload is aborted; files already closed stay behind as
    /// orphans no commit names, which no reader sees).
    async fn abort(&mut self) {
        if let Some((_, writer)) = self.open.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!("could not abort an unfinished file's upload: {e}");
        }
    }
}

/// Writes `df` (conformed to `def`, which is partitioned) sorted by partition, and commits the
/// files it adds and the files `mode` replaces in one commit. With `copies`, `df` may hold
/// columns after the catalogue's that order the copies: each partition's rows are sorted by
/// key and that order too, and only the first of each key's copies is written.
pub(crate) async fn write(
    ctx: &SessionContext,
    (def, table, copies): (&TableDef, &DeltaTable, Option<&Copies>),
    df: DataFrame,
    props: WriterProperties,
    mode: &WriteMode,
    commit: &Commit,
    stamp: &Stamp,
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
    let stored: Vec<usize> = (0..def.columns.len())
        .filter(|i| partition_by.iter().all(|(_, k)| k != i))
        .collect();
    let file_schema = Arc::new(schema.project(&stored).map_err(|e| query_err(e.into()))?);
    let new_writer = file_writers(table, file_schema, props).map_err(LakeError::delta(&name))?;
    let plan = df.create_physical_plan().await.map_err(&query_err)?;
    let mut keys: Vec<usize> = partition_by.iter().map(|(_, k)| *k).collect();
    let mut first = Vec::new();
    let copy_filter = match copies {
        Some(c) => {
            let index = |c: &&str| schema.index_of(c).map_err(|e| query_err(e.into()));
            keys.extend(c.key.iter().map(index).collect::<crate::Result<Vec<_>>>()?);
            first = c.first.iter().map(index).collect::<crate::Result<_>>()?;
            Some(CopyFilter::new(keys.clone()))
        }
        None => None,
    };
    let stream = sorted(plan, &keys, &first)
        .and_then(|sorted| execute_stream(sorted, ctx.task_ctx()))
        .map_err(&query_err)?;
    let files = Files {
        new_writer,
        stored,
        open: None,
        added: Vec::new(),
        rows: 0,
    };
    let (added, rows) = write_sorted(
        stream,
        files,
        &partition_by,
        (replaced.as_ref(), copy_filter),
        &name,
    )
    .await?;
    let version = commit_files(def, table, mode, (commit, stamp), removed, added, rows)
        .await
        .map_err(LakeError::delta(&name))?;
    Ok(Written {
        table: name.clone(),
        version,
        rows,
    })
}

/// `plan`'s rows as one stream sorted by `keys`, the partition columns first, by one sort that spills
/// beyond the memory limit. One sort rather than one per input partition merged: DataFusion 55's
/// sorts of a partitioned input, spilling side by side under one memory pool, failed with
/// "Failed to allocate … for ExternalSorterMerge" (a spilling sort gives its merge memory back
/// to the pool and asks for it again, apache/datafusion#24739); and on two cores a sort per core
/// sorted no faster (a stream per core written by a writer each was tried: same time, one more
/// open file).
///
/// Within a partition, the rows are sorted by the rest of `keys` and then by `first` (nulls
/// last), when the write drops copies.
fn sorted(
    plan: Arc<dyn ExecutionPlan>,
    keys: &[usize],
    first: &[usize],
) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    let schema = plan.schema();
    let column = |k: usize| Arc::new(Column::new(schema.field(k).name(), k));
    let nulls_last = SortOptions {
        descending: false,
        nulls_first: false,
    };
    let ordering = keys
        .iter()
        .map(|k| PhysicalSortExpr::new_default(column(*k)))
        .chain(
            first
                .iter()
                .map(|k| PhysicalSortExpr::new(column(*k), nulls_last)),
        );
    let ordering = LexOrdering::new(ordering).ok_or_else(|| {
        DataFusionError::Plan("a partitioned table without partition columns".into())
    })?;
    let one = Arc::new(CoalescePartitionsExec::new(plan));
    Ok(Arc::new(SortExec::new(ordering, one)))
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
    Ok(Box::new(move |values| {
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
    (commit, stamp): (&Commit, &Stamp),
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
    let properties = stamp.properties(commit, [("operationMetrics".into(), metrics)]);
    let committed = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    Ok(committed.version())
}

/// The rows a replace replaces, as a predicate and its text.
type Replaced = (Arc<dyn PhysicalExpr>, String);

/// Writes one stream sorted by partition, one file open at a time: the files added and the
/// rows written.
///
/// `partition_by` names the partition columns and their indices in the rows; with a replace,
/// `replaced` is the rows it replaces (and their text), which every row written must be; with
/// `copies`, the rows that repeat the row before them are not written.
async fn write_sorted(
    mut stream: SendableRecordBatchStream,
    mut files: Files,
    partition_by: &[(String, usize)],
    (replaced, mut copies): (Option<&Replaced>, Option<CopyFilter>),
    name: &str,
) -> crate::Result<(Vec<Add>, u64)> {
    let streamed: crate::Result<()> = async {
        while let Some(batch) = stream.next().await {
            let mut batch = batch.map_err(LakeError::query(name))?;
            if let Some(copies) = &mut copies {
                batch = copies
                    .apply(&batch)
                    .map_err(|e| LakeError::query(name)(e.into()))?;
            }
            if let Some((predicate, text)) = replaced {
                check_replaced(predicate.as_ref(), text, &batch, name)?;
            }
            let columns: Vec<ArrayRef> = partition_by
                .iter()
                .map(|(_, k)| batch.column(*k).clone())
                .collect();
            let runs = partition(&columns).map_err(|e| LakeError::query(name)(e.into()))?;
            for run in runs.ranges() {
                let values = partition_by
                    .iter()
                    .zip(&columns)
                    .map(|((c, _), a)| {
                        partition_value(a.as_ref(), run.start, c).map(|v| (c.clone(), v))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(LakeError::delta(name))?;
                files
                    .write(values, &batch.slice(run.start, run.len()))
                    .await
                    .map_err(LakeError::delta(name))?;
            }
        }
        files.close().await.map_err(LakeError::delta(name))
    }
    .await;
    if let Err(e) = streamed {
        files.abort().await;
        return Err(e);
    }
    Ok((files.added, files.rows))
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

/// Stops the write when a row falls outside the rows it replaces (`rule`): a replace writes
/// only those.
fn check_replaced(
    predicate: &dyn PhysicalExpr,
    rule: &str,
    batch: &RecordBatch,
    name: &str,
) -> crate::Result<()> {
    let matched = predicate
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(LakeError::query(name))?;
    if matched.as_boolean().true_count() == batch.num_rows() {
        return Ok(());
    }
    Err(LakeError::query(name)(DataFusionError::Execution(format!(
        "the write replaces the rows where {rule}, but its input holds rows outside them; \
         this is a bug in the query that builds {name}"
    ))))
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

    use datafusion::arrow::array::{Int32Array, Int64Array};
    use datafusion::arrow::datatypes::DataType;
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
        let dir = std::env::temp_dir().join(format!("lake-clustered-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args = LakeArgs {
            lake: Some(dir.display().to_string()),
            ..Default::default()
        };
        let cfg = LakeConfig::resolve(&args).expect("a local lake's configuration");
        let lake = Lake::open(&cfg).await.expect("a local lake");
        (lake, crate::session(&cfg), dir)
    }

    /// Rows `n` of (year, month) pairs, in the order given.
    fn rows(ctx: &SessionContext, rows: &[(i64, i32, i32)]) -> DataFrame {
        let batch = RecordBatch::try_new(
            PLAYS.arrow_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .expect("a batch of the table's schema");
        ctx.read_batch(batch).expect("a data frame of the batch")
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
    async fn a_table_the_catalogue_now_partitions_is_rebuilt_partitioned_by_an_overwrite_only() {
        let (lake, ctx, dir) = lake("repartition").await;
        // an earlier version of the catalogue: the same columns, no partitions
        const UNPARTITIONED: TableDef = TableDef {
            partition_by: &[],
            ..PLAYS
        };
        let commit = Commit::new("t");
        let plays = [(1, 2009, 1), (2, 2009, 2)];
        lake.write(
            &ctx,
            &UNPARTITIONED,
            rows(&ctx, &plays),
            WriteMode::Overwrite,
            &commit,
        )
        .await
        .expect("the old table");
        let replace = WriteMode::Replace(month(2009, 2));
        let refused = lake
            .write(&ctx, &PLAYS, rows(&ctx, &plays[1..]), replace, &commit)
            .await;
        assert!(
            refused.is_err(),
            "a replace into the old layout: {refused:?}"
        );
        assert!(
            lake.readable(&PLAYS, None).await.is_err(),
            "reading it says to rebuild"
        );
        overwrite(&lake, &ctx, &plays).await;
        let table = lake.table(&PLAYS).await.ok().flatten().expect("the table");
        let snapshot = table.snapshot().expect("its snapshot");
        assert_eq!(snapshot.metadata().partition_columns(), &["year", "month"]);
        assert_eq!(files(&lake).await.len(), 2, "a file per month");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The `n` of the rows of `def` in the lake, in order.
    async fn kept(lake: &Lake, ctx: &SessionContext, def: &TableDef) -> Vec<i64> {
        let table = lake.readable(def, None).await.expect("the table");
        let batches = ctx
            .read_table(table.provider)
            .and_then(|df| df.sort(vec![col("n").sort(true, false)]))
            .expect("a query of it")
            .collect()
            .await
            .expect("its rows");
        batches
            .iter()
            .flat_map(|b| {
                let n = b
                    .column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                n.values().to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn copies_in_a_partition_are_dropped_in_the_sort_keeping_the_first_as_a_window_would() {
        let (lake, ctx, dir) = lake("copies").await;
        // (n, year, month, key, landed): `key` and `landed` are the query's, not the table's
        let plays: [(i64, i32, i32, i64, i64); 7] = [
            (10, 2005, 1, 1, 2),
            (11, 2005, 1, 1, 1),
            (12, 2005, 1, 1, 3),
            (13, 2005, 2, 1, 1),
            (14, 2005, 1, 2, 5),
            (15, 2005, 1, 2, 4),
            (16, 2005, 1, 3, 1),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("year", DataType::Int32, false),
            Field::new("month", DataType::Int32, false),
            Field::new("key", DataType::Int64, false),
            Field::new("landed", DataType::Int64, false),
        ]));
        let int64 = |f: fn(&(i64, i32, i32, i64, i64)) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(plays.iter().map(f)))
        };
        let int32 = |f: fn(&(i64, i32, i32, i64, i64)) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from_iter_values(plays.iter().map(f)))
        };
        let columns = vec![
            int64(|p| p.0),
            int32(|p| p.1),
            int32(|p| p.2),
            int64(|p| p.3),
            int64(|p| p.4),
        ];
        let batch = RecordBatch::try_new(schema, columns).expect("a batch");
        let copies = Copies {
            key: &["key"],
            first: &["landed"],
        };
        const AGAIN: TableDef = TableDef {
            name: "plays_again",
            ..PLAYS
        };
        // an overwrite sorts by partition; a replace of rows by a value goes through
        // deltalake's write, which keeps the first copy by a window
        let by_value = WriteMode::Replace(col("n").gt_eq(lit(0i64)));
        for (def, mode) in [(&PLAYS, WriteMode::Overwrite), (&AGAIN, by_value)] {
            assert_eq!(applies(def, &mode), def.name == "plays");
            let df = ctx.read_batch(batch.clone()).expect("a data frame");
            let commit = Commit::new("t");
            let written = lake
                .write_distinct(&ctx, def, df, mode, &commit, Some(&copies))
                .await
                .expect("the write");
            assert_eq!(written.rows, 4, "{}", def.name);
            assert_eq!(
                kept(&lake, &ctx, def).await,
                [11, 13, 15, 16],
                "{}",
                def.name
            );
        }
        let _ = std::fs::remove_dir_all(dir);
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
