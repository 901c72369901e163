//! What a silver or gold run does to one table, how it is written, and how the run record
//! says it. Tables partitioned by month have integer `year` and `month` columns (the
//! catalogue's convention); tables with daily rows name their date column.

use datafusion::functions::expr_fn::date_part;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{col, lit};

use crate::scope::{Days, Months};
use crate::write::WriteMode;

/// What a run does to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// It holds everything the layer below has now.
    UpToDate,
    /// A backfill does not touch it: it is not partitioned by date.
    NotInScope,
    /// Rebuild it from all of the layer below.
    Full,
    /// Rebuild these months, replacing their partitions (none: the new input holds no row
    /// for it, and a commit of no rows records the input as consumed).
    Months(Months),
    /// Replace the rows of these days, by the table's date `column` (none: the new input holds
    /// no row for it, as with months).
    Days { days: Days, column: &'static str },
    /// Append what the bronze batches after this one bring (a quarantine).
    After(i64),
    /// It holds everything the layer below has now, because the parts of a split rebuilt it
    /// (`silver --part`): a commit of no rows records the input as consumed.
    Consumed,
}

impl Refresh {
    /// The run record's words for it (`"<table> refresh"`).
    pub fn describe(&self) -> String {
        match self {
            Refresh::UpToDate => "up to date: nothing new below it since it was built".into(),
            Refresh::NotInScope => "not in the backfill: not partitioned by date".into(),
            Refresh::Full => "rebuilt in full".into(),
            Refresh::Months(m) if m.is_empty() => {
                "no month to replace: the new bronze batches hold no accepted row".into()
            }
            Refresh::Months(m) => format!("months replaced: {m}"),
            Refresh::Days { days, .. } if days.is_empty() => {
                "no day to replace: the new bronze batches hold no row".into()
            }
            Refresh::Days { days, .. } => format!("days replaced: {days}"),
            Refresh::After(b) => format!("appended the rows of bronze batches after {b}"),
            Refresh::Consumed => {
                "up to date: the parts of a split rebuilt it; recorded as consumed".into()
            }
        }
    }

    /// The rows of the table it replaces, when it replaces part of the table (none when it
    /// has no month or day to replace, or only records the input as consumed); the rows
    /// written must be those too.
    pub fn replaced(&self) -> Option<Expr> {
        match self {
            Refresh::Months(m) => Some(m.predicate(col("year"), col("month"))),
            Refresh::Days { days, column } => Some(days.predicate(col(*column))),
            Refresh::Consumed => Some(lit(false)),
            _ => None,
        }
    }

    /// The rows whose ISO-8601 text time `column` falls in the months or days this refresh
    /// rebuilds, when it rebuilds some: narrows a scan to them by file statistics.
    pub fn text_filter(&self, column: &str) -> Option<Expr> {
        match self {
            Refresh::Consumed => Some(lit(false)),
            Refresh::Months(m) => Some(m.text_predicate(column)),
            Refresh::Days { days, .. } => Some(days.text_predicate(column)),
            _ => None,
        }
    }

    /// The rows whose time `typed` (a timestamp or date) falls in the months or days this
    /// refresh rebuilds, when it rebuilds some.
    pub fn time_filter(&self, typed: Expr) -> Option<Expr> {
        match self {
            Refresh::Consumed => Some(lit(false)),
            Refresh::Months(m) => Some(m.predicate(
                date_part(lit("year"), typed.clone()),
                date_part(lit("month"), typed),
            )),
            Refresh::Days { days, .. } => Some(days.predicate(typed)),
            _ => None,
        }
    }

    /// How the write treats the table; `None`: nothing is written.
    pub fn write_mode(&self) -> Option<WriteMode> {
        match self {
            Refresh::UpToDate | Refresh::NotInScope => None,
            Refresh::Full => Some(WriteMode::Overwrite),
            // the rejects of new batches; or, with no month to replace or what the parts of a
            // split rebuilt, a commit of no rows that records the new batches as consumed
            Refresh::After(_) | Refresh::Consumed => Some(WriteMode::Append),
            Refresh::Months(m) if m.is_empty() => Some(WriteMode::Append),
            Refresh::Days { days, .. } if days.is_empty() => Some(WriteMode::Append),
            Refresh::Months(_) | Refresh::Days { .. } => self.replaced().map(WriteMode::Replace),
        }
    }
}
