//! Arrow batch builders for bronze tables (text fields plus lineage) and quarantine rows, and
//! the sinks that hand full batches to the Delta writers.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, Int64Array, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use lake_runtime::BatchSender;
use lake_schema::{BATCH, INGESTED_AT, RUN_ID, SOURCE_LINE, SOURCE_OBJECT, TableDef, is_lineage};

use crate::sources::{Derived, Target};

/// Rows per batch handed to a writer.
pub const BATCH_ROWS: usize = 64 * 1024;

/// The bronze lineage every row carries.
#[derive(Debug, Clone)]
pub struct Lineage {
    /// The bronze batch (see `meta.landed_objects`).
    pub batch: i64,
    pub run_id: Arc<str>,
    /// Microseconds since the epoch.
    pub ingested_at: i64,
}

fn constant_strings(value: &str, n: usize) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(n, value.len() * n);
    for _ in 0..n {
        b.append_value(value);
    }
    Arc::new(b.finish())
}

fn constant_ints(value: i64, n: usize) -> ArrayRef {
    Arc::new(Int64Array::from(vec![value; n]))
}

fn constant_timestamps(micros: i64, n: usize) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(vec![micros; n]).with_timezone("UTC"))
}

/// Builds batches of a bronze table: its text fields as written, the columns derived from each
/// object's name, and the catalogue's lineage columns, filled by name.
pub struct TextRows {
    schema: SchemaRef,
    fields: Vec<StringBuilder>,
    derived: Vec<(&'static Derived, StringBuilder)>,
    /// The object the derived values were computed for, and the values.
    current: Option<(String, Vec<String>)>,
    source_object: StringBuilder,
    source_line: Int64Builder,
    lineage: Lineage,
}

impl TextRows {
    pub fn new(target: &Target, lineage: Lineage) -> Self {
        let derived = |name: &str| target.derived.iter().any(|d| d.column == name);
        let fields = target
            .def
            .columns
            .iter()
            .filter(|c| !is_lineage(c.name) && !derived(c.name))
            .count();
        Self {
            schema: target.def.arrow_schema(),
            fields: (0..fields).map(|_| StringBuilder::new()).collect(),
            derived: target
                .derived
                .iter()
                .map(|d| (d, StringBuilder::new()))
                .collect(),
            current: None,
            source_object: StringBuilder::new(),
            source_line: Int64Builder::new(),
            lineage,
        }
    }

    pub fn len(&self) -> usize {
        self.source_line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one row: its text fields in the table's order (as many as it has).
    pub fn push<'a>(&mut self, fields: impl Iterator<Item = &'a str>, object: &str, line: u64) {
        for (b, f) in self.fields.iter_mut().zip(fields) {
            b.append_value(f);
        }
        if !self.derived.is_empty() {
            if self.current.as_ref().is_none_or(|(o, _)| o != object) {
                let values = self
                    .derived
                    .iter()
                    .map(|(d, _)| (d.value)(object))
                    .collect();
                self.current = Some((object.to_string(), values));
            }
            if let Some((_, values)) = &self.current {
                for ((_, b), v) in self.derived.iter_mut().zip(values) {
                    b.append_value(v);
                }
            }
        }
        self.source_object.append_value(object);
        self.source_line.append_value(line as i64);
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.len();
        let mut fields = self.fields.iter_mut();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let name = field.name().as_str();
            columns.push(match name {
                SOURCE_OBJECT => Arc::new(self.source_object.finish()),
                SOURCE_LINE => Arc::new(self.source_line.finish()),
                BATCH => constant_ints(self.lineage.batch, n),
                RUN_ID => constant_strings(&self.lineage.run_id, n),
                INGESTED_AT => constant_timestamps(self.lineage.ingested_at, n),
                _ => {
                    let derived = self.derived.iter_mut().find(|(d, _)| d.column == name);
                    let builder = match derived {
                        Some((_, b)) => b,
                        None => fields.next().ok_or_else(|| {
                            ArrowError::SchemaError(format!("no builder for {name}"))
                        })?,
                    };
                    Arc::new(builder.finish())
                }
            });
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// Builds batches of a quarantine table.
pub struct QuarantineRows {
    schema: SchemaRef,
    table_name: StringBuilder,
    source_object: StringBuilder,
    source_line: Int64Builder,
    raw_line: StringBuilder,
    reason: StringBuilder,
    lineage: Lineage,
}

impl QuarantineRows {
    pub fn new(def: &TableDef, lineage: Lineage) -> Self {
        Self {
            schema: def.arrow_schema(),
            table_name: StringBuilder::new(),
            source_object: StringBuilder::new(),
            source_line: Int64Builder::new(),
            raw_line: StringBuilder::new(),
            reason: StringBuilder::new(),
            lineage,
        }
    }

    pub fn len(&self) -> usize {
        self.source_line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, table: &str, object: &str, line: u64, raw: &[u8], reason: &str) {
        self.table_name.append_value(table);
        self.source_object.append_value(object);
        self.source_line.append_value(line as i64);
        self.raw_line.append_value(String::from_utf8_lossy(raw));
        self.reason.append_value(reason);
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.len();
        RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(self.table_name.finish()),
                Arc::new(self.source_object.finish()),
                Arc::new(self.source_line.finish()),
                Arc::new(self.raw_line.finish()),
                Arc::new(self.reason.finish()),
                constant_ints(self.lineage.batch, n),
                constant_strings(&self.lineage.run_id, n),
                constant_timestamps(self.lineage.ingested_at, n),
            ],
        )
    }
}

/// Something that can be turned into a batch.
pub trait Rows {
    fn rows(&self) -> usize;
    fn batch(&mut self) -> Result<RecordBatch, ArrowError>;
}

impl Rows for TextRows {
    fn rows(&self) -> usize {
        self.len()
    }
    fn batch(&mut self) -> Result<RecordBatch, ArrowError> {
        self.finish()
    }
}

impl Rows for QuarantineRows {
    fn rows(&self) -> usize {
        self.len()
    }
    fn batch(&mut self) -> Result<RecordBatch, ArrowError> {
        self.finish()
    }
}

/// The Delta writer on the other end has gone away (it failed; its error is reported there).
#[derive(Debug)]
pub struct WriterGone;

/// A builder whose full batches go to a writer. Used from a blocking (parser) thread.
pub struct Sink<B> {
    pub rows: B,
    tx: BatchSender,
}

impl<B: Rows> Sink<B> {
    pub fn new(rows: B, tx: BatchSender) -> Self {
        Self { rows, tx }
    }

    /// Sends the batch if it is full.
    pub fn maybe_flush(&mut self) -> Result<(), WriterGone> {
        if self.rows.rows() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), WriterGone> {
        let n = self.rows.rows();
        if n == 0 {
            return Ok(());
        }
        let batch = self.rows.batch().map_err(Into::into);
        self.tx.blocking_send(batch).map_err(|_| WriterGone)
    }
}
