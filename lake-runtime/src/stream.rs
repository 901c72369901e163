//! A channel of record batches read as a DataFusion table, so that a producer (bronze's parser
//! thread) can feed a Delta write without holding the data in memory.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use tokio::sync::mpsc;

/// The receiving end of a batch stream for [`crate::Lake::write_stream`].
pub type BatchReceiver = mpsc::Receiver<datafusion::error::Result<RecordBatch>>;
/// The sending end of a batch stream for [`crate::Lake::write_stream`].
pub type BatchSender = mpsc::Sender<datafusion::error::Result<RecordBatch>>;

/// A batch channel with room for `depth` batches in flight.
pub fn batch_channel(depth: usize) -> (BatchSender, BatchReceiver) {
    mpsc::channel(depth)
}

/// A one-shot partition whose batches arrive over a channel.
#[derive(Debug)]
pub(crate) struct ChannelPartition {
    pub(crate) schema: SchemaRef,
    pub(crate) rx: Mutex<Option<BatchReceiver>>,
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
