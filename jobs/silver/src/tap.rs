//! The rejects of a checked view, kept as a table's pass reads the view: the quarantine of a full
//! rebuild takes them from there instead of reading and parsing bronze again.
//!
//! A tapped view is registered as a table whose partitions run the view's plan and keep, of
//! each batch, the rows that break a rule (`reject_reason` not null). A partition's rejects
//! count once it was read to its end; a partition read again (an explained write runs its
//! query twice) replaces what it kept. The rejects are complete when every partition was read
//! to its end, and kept only up to a bound: beyond it (a landing of garbage) the quarantine
//! reads the view again, as without a tap.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{filter_record_batch, is_not_null};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use lake_runtime::{LakeError, Result};

/// Bytes of rejects a tap keeps at most of each partition.
const KEPT_AT_MOST: usize = 64 << 20;

/// What a tap kept: each partition's rejects once it was read to its end.
#[derive(Default)]
struct Kept {
    /// Of each partition read to its end: its rejects and the rows it read.
    parts: Vec<Option<(Vec<RecordBatch>, u64)>>,
    /// A partition's rejects passed the bound.
    overflowed: bool,
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
        let plan = view.create_physical_plan().await.map_err(&err)?;
        let schema = plan.schema();
        let reason = schema
            .index_of("reject_reason")
            .map_err(|e| err(e.into()))?;
        let count = plan.properties().output_partitioning().partition_count();
        let kept = Arc::new(Mutex::new(Kept {
            parts: vec![None; count],
            ..Kept::default()
        }));
        let partitions = (0..count).map(|index| {
            Arc::new(TapPartition {
                plan: plan.clone(),
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

    /// The rejects as a table, when every partition was read to its end and they stayed under
    /// the bound.
    pub(crate) fn rejects(&self) -> Result<Option<Arc<MemTable>>> {
        let Some(parts) = self.complete()? else {
            return Ok(None);
        };
        let parts = parts.into_iter().map(|(rejects, _)| rejects).collect();
        let table =
            MemTable::try_new(self.schema.clone(), parts).map_err(LakeError::query(self.name))?;
        Ok(Some(Arc::new(table)))
    }

    /// The records the pass read and the rejected among them, when it read them all.
    pub(crate) fn counts(&self) -> Result<Option<(u64, u64)>> {
        let Some(parts) = self.complete()? else {
            return Ok(None);
        };
        let rows = parts.iter().map(|(_, rows)| rows).sum();
        let rejected = parts
            .iter()
            .flat_map(|(rejects, _)| rejects)
            .map(|b| b.num_rows() as u64)
            .sum();
        Ok(Some((rows, rejected)))
    }

    /// What every partition kept, when each was read to its end and none passed the bound.
    fn complete(&self) -> Result<Option<Vec<(Vec<RecordBatch>, u64)>>> {
        let kept = self.kept.lock().map_err(|_| poisoned(self.name))?;
        if kept.overflowed {
            return Ok(None);
        }
        Ok(kept.parts.iter().cloned().collect())
    }
}

fn poisoned(name: &str) -> LakeError {
    LakeError::query(name)(DataFusionError::Internal(
        "a tap's rejects were left half-written by a panic".into(),
    ))
}

/// One partition of a tapped view.
struct TapPartition {
    plan: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    index: usize,
    /// The column of `reject_reason`.
    reason: usize,
    kept: Arc<Mutex<Kept>>,
}

impl std::fmt::Debug for TapPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TapPartition({})", self.index)
    }
}

impl PartitionStream for TapPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.plan.schema();
        let rows = match self.plan.execute(self.index, ctx) {
            Ok(rows) => rows,
            Err(e) => {
                let failed = futures::stream::once(async { Err(e) });
                return Box::pin(RecordBatchStreamAdapter::new(schema, failed));
            }
        };
        let reading = Reading {
            rows,
            index: self.index,
            reason: self.reason,
            rejects: Some(Vec::new()),
            bytes: 0,
            read: 0,
            kept: self.kept.clone(),
        };
        let tapped = futures::stream::unfold(Some(reading), |reading| async move {
            let mut reading = reading?;
            match reading.rows.next().await {
                Some(Ok(batch)) => match reading.keep(&batch) {
                    Ok(()) => Some((Ok(batch), Some(reading))),
                    Err(e) => Some((Err(e.into()), None)),
                },
                Some(Err(e)) => Some((Err(e), None)),
                None => {
                    reading.finish();
                    None
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, tapped))
    }
}

/// A partition of a tapped view being read.
struct Reading {
    rows: SendableRecordBatchStream,
    index: usize,
    reason: usize,
    /// The rejects so far; `None` once they passed the bound.
    rejects: Option<Vec<RecordBatch>>,
    bytes: usize,
    /// Rows read so far.
    read: u64,
    kept: Arc<Mutex<Kept>>,
}

impl Reading {
    /// Keeps the rejects of `batch`.
    fn keep(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.read += batch.num_rows() as u64;
        let Some(rejects) = self.rejects.as_mut() else {
            return Ok(());
        };
        let broken = is_not_null(batch.column(self.reason))?;
        if broken.true_count() > 0 {
            let rows = compact(filter_record_batch(batch, &broken)?)?;
            self.bytes += rows.get_array_memory_size();
            rejects.push(rows);
        }
        if self.bytes > KEPT_AT_MOST {
            self.rejects = None;
        }
        Ok(())
    }

    /// The partition was read to its end: what it kept counts, in place of an earlier reading.
    fn finish(&mut self) {
        if let Ok(mut kept) = self.kept.lock() {
            match self.rejects.take() {
                Some(rejects) => kept.parts[self.index] = Some((rejects, self.read)),
                None => kept.overflowed = true,
            }
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

/// Registers `table` under `name`, in place of what was registered so.
pub(crate) fn register(
    ctx: &SessionContext,
    name: &str,
    table: Arc<dyn TableProvider>,
) -> Result<()> {
    let err = LakeError::query(format!("registering {name}"));
    ctx.deregister_table(name).map_err(&err)?;
    ctx.register_table(name, table).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{BooleanArray, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
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
        let (tap, table) = Tap::over("v", view(&ctx, parts)).await.unwrap();
        assert!(tap.rejects().unwrap().is_none(), "nothing read yet");
        register(&ctx, "v", table).unwrap();
        let accepted = "SELECT n FROM v WHERE reject_reason IS NULL";
        // read twice, as an explained write does: the rejects count once
        for _ in 0..2 {
            assert_eq!(rows(&ctx, accepted).await, 3);
        }
        assert_eq!(tap.counts().unwrap(), Some((5, 2)));
        register(&ctx, "kept", tap.rejects().unwrap().unwrap()).unwrap();
        assert_eq!(rows(&ctx, "SELECT n FROM kept WHERE n IN (2, 4)").await, 2);
    }

    #[tokio::test]
    async fn a_pass_stopped_early_leaves_the_tap_without_rejects() {
        let ctx = SessionContext::new();
        // one partition of two batches
        let parts: &[&[Rows]] = &[&[&[(1, Some("blank"))], &[(2, None)]]];
        let (tap, table) = Tap::over("v", view(&ctx, parts)).await.unwrap();
        register(&ctx, "v", table).unwrap();
        let mut stream = ctx
            .sql("SELECT n FROM v")
            .await
            .unwrap()
            .execute_stream()
            .await
            .unwrap();
        assert!(stream.next().await.is_some(), "a first batch");
        drop(stream);
        assert_eq!(tap.counts().unwrap(), None, "read in part");
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
