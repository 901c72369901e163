//! Copies of a row: rows of one partition with the same key, of which a write keeps the first.
//!
//! A partitioned write sorts its rows by partition anyway ([`crate::clustered`]); sorting each
//! partition's rows by the key and then by the order that says which copy comes first puts the
//! copies of a row next to each other, so they are dropped as the sorted rows stream to the
//! files: one pass over the rows, no separate pass to find the repeated keys and no second sort.
//! Any other write keeps the first copy by a window over the key instead.

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::cmp::not_distinct;
use datafusion::arrow::compute::{and, concat, filter_record_batch, not};
use datafusion::arrow::error::ArrowError;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, ident};
use datafusion::prelude::{DataFrame, lit};

use lake_schema::TableDef;

use crate::error::{LakeError, Result};

/// Which rows of a table are copies of each other, and which copy it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Copies {
    /// Rows of one partition with equal values here (nulls equal to nulls) are copies.
    pub key: &'static [&'static str],
    /// Of copies, the first in this order is kept: columns of the query, which need not be
    /// the table's (`batch`, the bronze batch a row landed in).
    pub first: &'static [&'static str],
}

/// The column that numbers each key's copies in [`Copies::keep_first`].
const COPY: &str = "__copy";

impl Copies {
    /// The rows of `df` with each key's first copy only, by a window over the key and the
    /// partition columns `partition_by`: for writes that do not sort by partition.
    pub fn keep_first(
        &self,
        df: DataFrame,
        partition_by: &[&str],
        name: &str,
    ) -> Result<DataFrame> {
        let partition = partition_by.iter().chain(self.key).map(|c| ident(*c));
        let order = self.first.iter().map(|c| ident(*c).sort(true, false));
        let numbered = row_number()
            .partition_by(partition.collect())
            .order_by(order.collect())
            .build()
            .map_err(LakeError::query(name))?
            .alias(COPY);
        let columns: Vec<_> = df.schema().columns().into_iter().map(|c| c.name).collect();
        df.window(vec![numbered])
            .and_then(|df| df.filter(ident(COPY).eq(lit(1u64))))
            .and_then(|df| {
                df.select_columns(&columns.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .map_err(LakeError::query(name))
    }

    /// The columns of the key and the order that are not columns of `def`: kept through the
    /// sort, not written.
    pub(crate) fn extra_columns(&self, def: &TableDef) -> Vec<&'static str> {
        let mut extra: Vec<&'static str> = Vec::new();
        for c in self.key.iter().chain(self.first) {
            if def.column(c).is_none() && !extra.contains(c) {
                extra.push(c);
            }
        }
        extra
    }
}

/// Drops copies from rows sorted by partition, key and first copy: a row whose key columns
/// (and partition columns) equal the previous row's, across batches, is a copy.
pub(crate) struct CopyFilter {
    /// Indices of the columns compared: the partition columns and the key.
    compared: Vec<usize>,
    /// The compared columns of the last row seen.
    last: Option<Vec<ArrayRef>>,
}

impl CopyFilter {
    pub(crate) fn new(compared: Vec<usize>) -> Self {
        Self {
            compared,
            last: None,
        }
    }

    /// `batch` without the rows that repeat the row before them.
    pub(crate) fn apply(&mut self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(batch.clone());
        }
        let mut repeats: Option<BooleanArray> = None;
        let mut first_repeats = self.last.is_some();
        for (i, &c) in self.compared.iter().enumerate() {
            let column = batch.column(c);
            let same = not_distinct(&column.slice(1, n - 1), &column.slice(0, n - 1))?;
            repeats = Some(match repeats {
                Some(r) => and(&r, &same)?,
                None => same,
            });
            if let Some(last) = &self.last {
                first_repeats &= not_distinct(&column.slice(0, 1), &last[i])?.value(0);
            }
        }
        let repeats = repeats.unwrap_or_else(|| BooleanArray::from(vec![false; n - 1]));
        let head = BooleanArray::from(vec![first_repeats]);
        let repeats = concat(&[&head as &dyn Array, &repeats])?;
        let keep = not(repeats
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| ArrowError::ComputeError("comparing rows gave no booleans".into()))?)?;
        self.last = Some(
            self.compared
                .iter()
                .map(|&c| batch.column(c).slice(n - 1, 1))
                .collect(),
        );
        filter_record_batch(batch, &keep)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(users: &[Option<&str>], times: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, true),
            Field::new("time", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(users.to_vec())),
                Arc::new(Int64Array::from(times.to_vec())),
            ],
        )
        .unwrap()
    }

    fn times(b: &RecordBatch) -> Vec<i64> {
        let t = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        t.values().to_vec()
    }

    #[test]
    fn a_row_repeating_the_one_before_it_is_dropped_across_batches_and_nulls_are_equal() {
        let mut copies = CopyFilter::new(vec![0, 1]);
        let a = batch(
            &[Some("u"), Some("u"), Some("u"), None, None],
            &[1, 1, 2, 2, 2],
        );
        assert_eq!(times(&copies.apply(&a).unwrap()), [1, 2, 2]);
        // the first row of the next batch repeats the last of this one
        let b = batch(&[None, Some("v"), Some("v")], &[2, 2, 3]);
        assert_eq!(times(&copies.apply(&b).unwrap()), [2, 3]);
    }
}
