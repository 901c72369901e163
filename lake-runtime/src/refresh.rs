//! What a silver or gold run does to one table, how it is written, and how the run record
//! says it. Tables partitioned by month have integer `year` and `month` columns, tables with
//! daily rows a `day` date column (the catalogue's convention).

use datafusion::logical_expr::Expr;
use datafusion::prelude::col;

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
    /// Replace the rows of these days.
    Days(Days),
    /// Append what the bronze batches after this one bring (a quarantine).
    After(i64),
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
            Refresh::Days(d) => format!("days replaced: {d}"),
            Refresh::After(b) => format!("appended the rows of bronze batches after {b}"),
        }
    }

    /// The rows of the table it replaces, when it replaces part of the table; the rows
    /// written must be those too.
    pub fn replaced(&self) -> Option<Expr> {
        match self {
            Refresh::Months(m) if !m.is_empty() => Some(m.predicate(col("year"), col("month"))),
            Refresh::Days(d) => Some(d.predicate("day")),
            _ => None,
        }
    }

    /// How the write treats the table; `None`: nothing is written.
    pub fn write_mode(&self) -> Option<WriteMode> {
        match self {
            Refresh::UpToDate | Refresh::NotInScope => None,
            Refresh::Full => Some(WriteMode::Overwrite),
            // the rejects of new batches; or, with no month to replace, a commit of no rows
            // that records the new batches as consumed
            Refresh::After(_) => Some(WriteMode::Append),
            Refresh::Months(m) if m.is_empty() => Some(WriteMode::Append),
            Refresh::Months(_) | Refresh::Days(_) => self.replaced().map(WriteMode::Replace),
        }
    }
}
