//! The rejects of a checked view, kept as a table's pass reads the view: the quarantine of a full
//! rebuild takes them from there instead of reading and parsing bronze again.
//!
//! A tapped view is registered as a table whose partitions run the view's plan and keep, of
//! each batch, the rows that break a rule (`reject_reason` not null). A partition's rejects
//! count once it was read to its end. A reading is one query's (one task context's): a new
//! query reading the tap (an explained write runs its query twice) starts again from nothing,
//! with a plan made afresh for it (a physical plan runs once: its repartitions hand each output
//! partition out once, and its scans share their files among its partitions). The rejects are
//! complete when every partition of the last reading was read to its end, and kept only up to
//! a bound and while the query memory pool grants them: beyond either (a landing of garbage)
//! the quarantine reads the view again, as without a tap. One query at a time reads a tap.

use std::sync::{Arc, Mutex, Weak};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{filter_record_batch, is_not_null};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::DataFrame;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use lake_runtime::{LakeError, Result};

/// Bytes of rejects a tap keeps at most of each partition.
const KEPT_AT_MOST: usize = 16 << 20;

/// What one partition kept, read to its end.
struct Part {
    rejects: Vec<RecordBatch>,
    /// Rows the partition read, and rejected.
    read: u64,
    rejected: u64,
    /// The rejects' bytes, held in the query memory pool; `None` once released.
    _held: Option<MemoryReservation>,
}

/// What a tap kept: each partition's rejects once it was read to its end.
#[derive(Default)]
struct Kept {
    /// The reading they come from.
    reading: u64,
    parts: Vec<Option<Part>>,
    /// A partition's rejects passed the bound, or the pool refused them.
    overflowed: bool,
    /// The rejects were let go (their counts stay).
    released: bool,
}

/// The physical plan the partitions of one reading of the view run: one query's.
struct Reading {
    plan: Arc<dyn ExecutionPlan>,
    /// The query's task context; none before the first.
    query: Option<Weak<TaskContext>>,
    /// Counts the readings.
    number: u64,
}

/// A checked view whose rejects are kept as a table's pass reads it.
pub(crate) struct Tap {
    name: &'static str,
    schema: SchemaRef,
    kept: Arc<Mutex<Kept>>,
}

impl Tap {
    /// Plans `view` (the checked view `name`) and gives the table that reads it while keeping
    /// its rejects, with the tap to take them from.
    pub(crate) async fn over(
        name: &'static str,
        view: DataFrame,
    ) -> Result<(Self, Arc<StreamingTable>)> {
        let err = LakeError::query(name);
        let plan = view.clone().create_physical_plan().await.map_err(&err)?;
        let schema = plan.schema();
        let reason = schema
            .index_of("reject_reason")
            .map_err(|e| err(e.into()))?;
        let count = plan.properties().output_partitioning().partition_count();
        let kept = Arc::new(Mutex::new(Kept {
            parts: (0..count).map(|_| None).collect(),
            ..Kept::default()
        }));
        let reading = Arc::new(futures::lock::Mutex::new(Reading {
            plan,
            query: None,
            number: 0,
        }));
        let partitions = (0..count).map(|index| {
            Arc::new(TapPartition {
                name,
                view: view.clone(),
                reading: reading.clone(),
                schema: schema.clone(),
                index,
                reason,
                kept: kept.clone(),
            }) as Arc<dyn PartitionStream>
        });
        let table = StreamingTable::try_new(schema.clone(), partitions.collect()).map_err(err)?;
        Ok((Self { name, schema, kept }, Arc::new(table)))
    }

    /// The checked view tapped.
    pub(crate) fn view(&self) -> &'static str {
        self.name
    }

    /// The rejects as a table, when every partition was read to its end and they were all
    /// kept; `None` otherwise (the view is then read again).
    pub(crate) fn rejects(&self) -> Option<Arc<MemTable>> {
        let kept = self.kept.lock().ok()?;
        if kept.overflowed || kept.released {
            return None;
        }
        let mut parts = Vec::with_capacity(kept.parts.len());
        for part in &kept.parts {
            parts.push(part.as_ref()?.rejects.clone());
        }
        if parts.is_empty() {
            parts.push(Vec::new());
        }
        match MemTable::try_new(self.schema.clone(), parts) {
            Ok(table) => Some(Arc::new(table)),
            Err(e) => {
                tracing::warn!(view = self.name, "the rejects kept could not be read: {e}");
                None
            }
        }
    }

    /// The records the pass read and the rejected among them, when it read them all.
    pub(crate) fn counts(&self) -> Option<(u64, u64)> {
        let kept = self.kept.lock().ok()?;
        if kept.overflowed {
            return None;
        }
        let (mut rows, mut rejected) = (0, 0);
        for part in &kept.parts {
            let part = part.as_ref()?;
            rows += part.read;
            rejected += part.rejected;
        }
        Some((rows, rejected))
    }

    /// Lets the rejects go (and their memory back to the pool), keeping their counts.
    pub(crate) fn release(&self) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.released = true;
            for part in kept.parts.iter_mut().flatten() {
                part.rejects = Vec::new();
                part._held = None;
            }
        }
    }
}

/// One partition of a tapped view.
#[derive(Clone)]
struct TapPartition {
    name: &'static str,
    /// The view, planned again for each reading.
    view: DataFrame,
    reading: Arc<futures::lock::Mutex<Reading>>,
    schema: SchemaRef,
    index: usize,
    /// The column of `reject_reason`.
    reason: usize,
    kept: Arc<Mutex<Kept>>,
}

impl std::fmt::Debug for TapPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TapPartition({}, {})", self.name, self.index)
    }
}

impl TapPartition {
    /// The plan this partition runs in the query of `ctx`, and the reading's number: a query
    /// not seen before starts a reading, with a fresh plan (but the first) and nothing kept.
    async fn plan(
        &self,
        ctx: &Arc<TaskContext>,
    ) -> Result<(Arc<dyn ExecutionPlan>, u64), DataFusionError> {
        let mut reading = self.reading.lock().await;
        let seen = reading
            .query
            .as_ref()
            .map(|q| q.as_ptr() == Arc::as_ptr(ctx));
        if seen != Some(true) {
            if seen.is_some() {
                let plan = self.view.clone().create_physical_plan().await?;
                let count = plan.properties().output_partitioning().partition_count();
                if count != self.count() {
                    return Err(DataFusionError::Internal(format!(
                        "the view {} was planned with {} partitions, then {count}",
                        self.name,
                        self.count()
                    )));
                }
                reading.plan = plan;
            }
            reading.query = Some(Arc::downgrade(ctx));
            reading.number += 1;
            if let Ok(mut kept) = self.kept.lock() {
                *kept = Kept {
                    reading: reading.number,
                    parts: (0..kept.parts.len()).map(|_| None).collect(),
                    ..Kept::default()
                };
            }
        }
        Ok((reading.plan.clone(), reading.number))
    }

    /// The partitions of the view.
    fn count(&self) -> usize {
        self.kept.lock().map_or(0, |k| k.parts.len())
    }

    /// The rows of this partition in the query of `ctx`, its rejects kept on the way.
    async fn read(
        self,
        ctx: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch, DataFusionError>>, DataFusionError> {
        let (plan, reading) = self.plan(&ctx).await?;
        let held = MemoryConsumer::new(format!("tap of {}[{}]", self.name, self.index))
            .register(ctx.memory_pool());
        let keeping = Keeping {
            rows: plan.execute(self.index, ctx)?,
            name: self.name,
            index: self.index,
            reading,
            reason: self.reason,
            rejects: Some(Vec::new()),
            held,
            read: 0,
            kept: self.kept,
        };
        let tapped = futures::stream::unfold(Some(keeping), |keeping| async move {
            let mut keeping = keeping?;
            match keeping.rows.next().await {
                Some(Ok(batch)) => match keeping.keep(&batch) {
                    Ok(()) => Some((Ok(batch), Some(keeping))),
                    Err(e) => Some((Err(e.into()), None)),
                },
                Some(Err(e)) => Some((Err(e), None)),
                None => {
                    keeping.finish();
                    None
                }
            }
        });
        Ok(tapped.boxed())
    }
}

impl PartitionStream for TapPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rows = futures::stream::once(self.clone().read(ctx)).try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), rows))
    }
}

/// A partition of a tapped view being read.
struct Keeping {
    rows: SendableRecordBatchStream,
    name: &'static str,
    index: usize,
    /// The reading's number.
    reading: u64,
    reason: usize,
    /// The rejects so far; `None` once they passed the bound or the pool refused them.
    rejects: Option<Vec<RecordBatch>>,
    /// Their bytes, held in the query memory pool.
    held: MemoryReservation,
    /// Rows read so far.
    read: u64,
    kept: Arc<Mutex<Kept>>,
}

impl Keeping {
    /// Keeps the rejects of `batch`.
    fn keep(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.read += batch.num_rows() as u64;
        let Some(rejects) = self.rejects.as_mut() else {
            return Ok(());
        };
        let broken = is_not_null(batch.column(self.reason))?;
        if broken.true_count() == 0 {
            return Ok(());
        }
        let rows = compact(filter_record_batch(batch, &broken)?)?;
        let bytes = rows.get_array_memory_size();
        let refused = if self.held.size() + bytes > KEPT_AT_MOST {
            Some(format!("more than {} MiB", KEPT_AT_MOST >> 20))
        } else {
            self.held.try_grow(bytes).err().map(|e| e.to_string())
        };
        match refused {
            Some(why) => {
                tracing::info!(
                    "{}: the rejects of partition {} are not kept ({why}); the quarantine will read the view again",
                    self.name,
                    self.index
                );
                self.rejects = None;
                self.held.free();
            }
            None => rejects.push(rows),
        }
        Ok(())
    }

    /// The partition was read to its end: what it kept counts, if its reading is the last.
    fn finish(&mut self) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.reading != self.reading {
            return;
        }
        match self.rejects.take() {
            Some(rejects) => {
                let held = self.held.take();
                kept.parts[self.index] = Some(Part {
                    rejected: rejects.iter().map(|b| b.num_rows() as u64).sum(),
                    rejects,
                    read: self.read,
                    _held: Some(held),
                });
            }
            None => kept.overflowed = true,
        }
    }
}

/// `rows` holding only their own bytes: a filtered string view still points into the buffers of
/// the whole batch it came from, which a tap would otherwise keep (and count) for a row or two.
fn compact(rows: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let columns = rows.columns().iter().map(|c| match c.data_type() {
        DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
        DataType::BinaryView => Arc::new(c.as_binary_view().gc()),
        _ => c.clone(),
    });
    RecordBatch::try_new(rows.schema(), columns.collect())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{BooleanArray, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::logical_expr::Partitioning;
    use datafusion::prelude::SessionContext;

    use super::*;

    type Rows<'a> = &'a [(i64, Option<&'a str>)];

    /// A view of partitions, each of batches of rows (n, reject_reason).
    fn view(ctx: &SessionContext, parts: &[&[Rows]]) -> DataFrame {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("reject_reason", DataType::Utf8, true),
        ]));
        let batch = |rows: &Rows| {
            let n = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
            let reason = StringArray::from_iter(rows.iter().map(|r| r.1));
            RecordBatch::try_new(schema.clone(), vec![Arc::new(n), Arc::new(reason)]).unwrap()
        };
        let parts = parts.iter().map(|p| p.iter().map(batch).collect());
        let table = MemTable::try_new(schema.clone(), parts.collect()).unwrap();
        ctx.read_table(Arc::new(table)).unwrap()
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> usize {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    #[tokio::test]
    async fn a_tap_keeps_the_rejects_of_a_pass_read_to_its_end_once_however_often_it_ran() {
        let ctx = SessionContext::new();
        let parts: &[&[Rows]] = &[
            &[&[(1, None), (2, Some("blank")), (3, None)]],
            &[&[(4, Some("bad time")), (5, None)]],
        ];
        // a view whose plan repartitions: a physical plan of it runs once only
        let two = Partitioning::RoundRobinBatch(2);
        let repartitioned = view(&ctx, parts).repartition(two).unwrap();
        let (tap, table) = Tap::over("v", repartitioned).await.unwrap();
        assert!(tap.rejects().is_none(), "nothing read yet");
        lake_runtime::register_as(&ctx, "v", table).unwrap();
        let accepted = "SELECT n FROM v WHERE reject_reason IS NULL";
        // read twice, as an explained write does: the rejects count once
        for _ in 0..2 {
            assert_eq!(rows(&ctx, accepted).await, 3);
        }
        assert_eq!(tap.counts(), Some((5, 2)));
        lake_runtime::register_as(&ctx, "kept", tap.rejects().unwrap()).unwrap();
        assert_eq!(rows(&ctx, "SELECT n FROM kept WHERE n IN (2, 4)").await, 2);
        tap.release();
        assert!(tap.rejects().is_none(), "released");
        assert_eq!(tap.counts(), Some((5, 2)), "the counts stay");
    }

    #[tokio::test]
    async fn a_tap_lets_its_rejects_go_when_the_memory_pool_refuses_them() {
        let pool = Arc::new(GreedyMemoryPool::new(1024));
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(pool)
            .build_arc()
            .unwrap();
        let ctx = SessionContext::new_with_config_rt(Default::default(), runtime);
        let long = "r".repeat(4096);
        let parts: &[&[Rows]] = &[&[&[(1, Some(long.as_str())), (2, None)]]];
        let (tap, table) = Tap::over("v", view(&ctx, parts)).await.unwrap();
        lake_runtime::register_as(&ctx, "v", table).unwrap();
        assert_eq!(
            rows(&ctx, "SELECT n FROM v").await,
            2,
            "the view is read whole"
        );
        assert!(
            tap.rejects().is_none(),
            "the quarantine reads the view again"
        );
        assert_eq!(tap.counts(), None);
    }

    #[tokio::test]
    async fn a_query_reading_a_tap_in_part_after_a_whole_one_leaves_it_without_rejects() {
        let ctx = SessionContext::new();
        let parts: &[&[Rows]] = &[
            &[&[(1, Some("blank"))], &[(2, None)]],
            &[&[(3, None)], &[(4, Some("bad time"))]],
        ];
        let (tap, table) = Tap::over("v", view(&ctx, parts)).await.unwrap();
        lake_runtime::register_as(&ctx, "v", table).unwrap();
        assert_eq!(rows(&ctx, "SELECT n FROM v").await, 4);
        assert_eq!(tap.counts(), Some((4, 2)));
        let df = ctx.sql("SELECT n FROM v").await.unwrap();
        let mut stream = df.execute_stream().await.unwrap();
        assert!(stream.next().await.is_some(), "a first batch");
        drop(stream);
        assert_eq!(tap.counts(), None, "the last query read in part");
    }

    #[tokio::test]
    async fn a_pass_stopped_early_leaves_the_tap_without_rejects() {
        let ctx = SessionContext::new();
        // one partition of two batches
        let parts: &[&[Rows]] = &[&[&[(1, Some("blank"))], &[(2, None)]]];
        let (tap, table) = Tap::over("v", view(&ctx, parts)).await.unwrap();
        lake_runtime::register_as(&ctx, "v", table).unwrap();
        let mut stream = ctx
            .sql("SELECT n FROM v")
            .await
            .unwrap()
            .execute_stream()
            .await
            .unwrap();
        assert!(stream.next().await.is_some(), "a first batch");
        drop(stream);
        assert_eq!(tap.counts(), None, "read in part");
    }

    #[test]
    fn a_kept_reject_holds_its_own_text_not_the_batch_it_was_filtered_from() {
        let long = "x".repeat(1000);
        let text = StringViewArray::from_iter_values((0..1000).map(|_| long.as_str()));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "t",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(text)]).unwrap();
        let one = BooleanArray::from_iter((0..1000).map(|i| Some(i == 7)));
        let filtered = filter_record_batch(&batch, &one).unwrap();
        assert!(
            filtered.get_array_memory_size() > 900_000,
            "shares the batch's buffers"
        );
        let kept = compact(filtered).unwrap();
        assert_eq!(kept.num_rows(), 1);
        assert!(
            kept.get_array_memory_size() < 10_000,
            "{}",
            kept.get_array_memory_size()
        );
    }
}
