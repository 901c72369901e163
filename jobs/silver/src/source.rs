//! What a silver source declares: the checked views over its bronze tables, its tables with
//! the SQL and refresh kind of each, how their counts reconcile, and the figures the run record
//! reports. The engine ([`crate::engine`]) runs any source declared so.

use lake_runtime::{Copies, Sql};
use lake_schema::TableDef;

/// A source as silver conforms it.
#[derive(Debug)]
pub struct Source {
    /// The source's folder and prefix (`lastfm`).
    pub name: &'static str,
    /// The tables its checked views read: its bronze tables, and any meta table they consult
    /// (`meta.landed_objects`). A source none of whose bronze tables exist yet is skipped; a
    /// missing one of several reads as empty.
    pub inputs: &'static [&'static TableDef],
    /// Views the checked views read, registered before them as they are (never narrowed):
    /// rules shared by several checked views.
    pub shared: &'static [Sql],
    /// Views that type every bronze record and name the first rule it breaks.
    pub checked: &'static [&'static Checked],
    /// Its tables, in the order they are built: a table's query may read one built before it
    /// (`silver.sparkify_songs`) as well as the checked views.
    pub tables: &'static [Table],
    /// Figures for the run record, each a query over the source's silver tables returning one
    /// row of integers (`songplays_matching_song_data`), reported when a table was written.
    pub measures: &'static [Sql],
}

impl Source {
    /// Whether a backfill rebuilds whole months (some table is month-partitioned by new rows)
    /// rather than days.
    pub fn by_month(&self) -> bool {
        self.tables
            .iter()
            .any(|t| matches!(t.kind, Kind::Monthly { .. } | Kind::MonthlyRebuilt))
    }
}

/// A checked view: every bronze record of a table, typed, with the first rule it breaks in
/// `reject_reason` (NULL when it breaks none), its `batch`, and its lineage. Registered under
/// its SQL file's name.
#[derive(Debug)]
pub struct Checked {
    pub sql: Sql,
    /// The record's time, when it has one: lets a run read only the bronze files of the months
    /// or days it rebuilds, find the months or days new records fall in, and count them.
    pub time: Option<Time>,
    /// Computed once per run and held in memory: costly to compute and read by several tables.
    pub cached: bool,
}

/// The columns of a checked view that hold a record's time.
#[derive(Debug)]
pub struct Time {
    /// As written, ISO-8601 text that sorts in time order (`raw_timestamp`): scans skip files
    /// by its min/max statistics. `None` when the time is inside the record (a JSON `ts`).
    pub text: Option<&'static str>,
    /// Parsed (`played_at`, a timestamp or a date): the months or days of the rows.
    pub typed: &'static str,
}

/// A silver table and how it follows bronze.
#[derive(Debug)]
pub struct Table {
    pub def: &'static TableDef,
    /// The query whose rows it holds (it may produce more columns; the catalogue's are kept).
    pub sql: Sql,
    pub kind: Kind,
    /// Which of its rows are copies of each other, of which it keeps the first.
    pub copies: Option<Copies>,
    /// How its counts reconcile with a checked view, when they do.
    pub reconcile: Option<Reconcile>,
}

/// How a table follows bronze when new batches arrive.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Partitioned by `year` and `month`: new batches replace the months their accepted
    /// records of `new_rows` (a view with a [`Time`]) fall in; a backfill replaces its months.
    Monthly { new_rows: &'static Checked },
    /// Partitioned by `year` and `month`, but its rows depend on whole other tables (Sparkify's
    /// song plays are matched against the whole song catalogue): new batches rebuild it whole;
    /// a backfill replaces its months.
    MonthlyRebuilt,
    /// Daily rows (a date `column`; partitioned by `year` and `month`): new batches replace the
    /// days their records of `new_rows` (a view with a [`Time`]) fall in, rejected ones
    /// included; a backfill replaces its days. A new day costs a day.
    Daily {
        new_rows: &'static Checked,
        column: &'static str,
    },
    /// A dimension: rebuilt whole from all of its source when anything changed.
    Whole,
    /// A quarantine: the rejects of new batches are appended. Its rows count as quarantined.
    Rejects,
}

impl Kind {
    /// Whether its rows are replaced by month or by day, so that a backfill touches it.
    pub fn is_dated(self) -> bool {
        matches!(
            self,
            Kind::Monthly { .. } | Kind::MonthlyRebuilt | Kind::Daily { .. }
        )
    }
}

/// Every record of `input` that a table's refresh read is a row of the table, a reject (in the
/// source's quarantine, under the table's name), or one of `rest`:
/// rows in = rows out + rejected + rest.
#[derive(Debug, Clone, Copy)]
pub struct Reconcile {
    pub input: &'static Checked,
    /// What the records in that are neither rows nor rejects are (`duplicates`, `other_pages`).
    pub rest: &'static str,
}

impl Table {
    pub const fn new(def: &'static TableDef, sql: Sql, kind: Kind) -> Self {
        Self {
            def,
            sql,
            kind,
            copies: None,
            reconcile: None,
        }
    }

    /// Rows with the same `key` are copies: the first in the order `first` is kept.
    pub const fn once_per(
        self,
        key: &'static [&'static str],
        first: &'static [&'static str],
    ) -> Self {
        Self {
            copies: Some(Copies { key, first }),
            ..self
        }
    }

    pub const fn reconciled(self, input: &'static Checked, rest: &'static str) -> Self {
        Self {
            reconcile: Some(Reconcile { input, rest }),
            ..self
        }
    }
}
