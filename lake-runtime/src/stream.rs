//! A channel of record batches read as a DataFusion table, so that a producer (bronze's parser
//! thread) can feed a Delta write without holding the data in memory.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use tokio::sync::mpsc;

/// The receiving end of a batch stream for [`crate::Lake::write_stream`].
pub type BatchReceiver = mpsc::Receiver<datafusion::error::Result<RecordBatch>>;
/// The sending end of a batch stream for [`crate::Lake::write_stream`].
pub type BatchSender = mpsc::Sender<datafusion::error::Result<RecordBatch>>;

/// A batch channel with room for `depth` batches in flight.
pub fn batch_channel(depth: usize) -> (BatchSender, BatchReceiver) {
    mpsc::channel(depth)
}

/// A one-shot partition whose batches arrive over a channel or come from a running query.
pub(crate) struct OnceStream {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl OnceStream {
    pub(crate) fn from_channel(schema: SchemaRef, rx: BatchReceiver) -> Self {
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        let stream = RecordBatchStreamAdapter::new(schema.clone(), batches);
        Self::from_stream(Box::pin(stream))
    }

    pub(crate) fn from_stream(stream: SendableRecordBatchStream) -> Self {
        Self {
            schema: stream.schema(),
            stream: Mutex::new(Some(stream)),
        }
    }
}

impl std::fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceStream")
            .field("schema", &self.schema)
            .finish()
    }
}

impl PartitionStream for OnceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().ok().and_then(|mut s| s.take()) {
            Some(stream) => stream,
            None => Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::once(async {
                    Err(datafusion::error::DataFusionError::Execution(
                        "a streamed input can be read only once".into(),
                    ))
                }),
            )),
        }
    }
}
