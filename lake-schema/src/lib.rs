//! The lake's table catalogue: every table the jobs write, in one place.
//!
//! A table is defined once here by its layer, name, location under the lake root, columns
//! (with their meaning), partition columns and a description. The jobs build their Arrow
//! schemas from these definitions, `lake sql` registers them, and the README's table
//! catalogue is generated from them (`cargo run -p lake-schema`), so the three cannot drift.
//!
//! Naming: a table lives at `<lake>/<layer>/<source>/<table>` and is known to SQL as
//! `<layer>.<source>_<table>` (`silver.lastfm_listens` at `<lake>/silver/lastfm/listens`).
//! Column types are limited to those Spark, Trino, DuckDB and Polars all read the same way:
//! UTF-8 strings, signed integers, dates and UTC timestamps in microseconds.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The medallion layer a table belongs to; also the first part of its SQL name and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Bronze,
    Silver,
    Gold,
    /// Run records and other bookkeeping of the jobs themselves.
    Meta,
}

impl Layer {
    pub const ALL: [Layer; 4] = [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Meta];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
            Layer::Meta => "meta",
        }
    }
}

/// A column type. Only types every common engine reads alike are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int32,
    Int64,
    Float64,
    Boolean,
    Date,
    /// UTC timestamp, microsecond precision (Delta `timestamp`).
    Timestamp,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Text => DataType::Utf8,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The type's name as Delta and Spark write it (`string`, `int`, `timestamp`, …).
    pub fn sql_name(self) -> &'static str {
        match self {
            ColumnType::Text => "string",
            ColumnType::Int32 => "int",
            ColumnType::Int64 => "bigint",
            ColumnType::Float64 => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp (UTC, µs)",
        }
    }
}

/// How a column's values are laid out in the table's Parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The writer's default: a dictionary while it pays, plain values after.
    Default,
    /// Each value as its difference from the one before (`DELTA_BINARY_PACKED` for integers,
    /// dates and timestamps, `DELTA_BYTE_ARRAY` for text), without a dictionary. For values that
    /// are nearly unique per row but close to their neighbours: line numbers and play times.
    /// At Last.fm-1K scale it made bronze's plays 30% and silver's listens 31% smaller and
    /// spared the writer a dictionary of 19 M distinct values (README, Performance).
    Delta,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    pub doc: &'static str,
    pub encoding: Encoding,
}

impl Column {
    /// The column stored with [`Encoding::Delta`].
    const fn delta(self) -> Self {
        Column {
            encoding: Encoding::Delta,
            ..self
        }
    }
}

pub(crate) const fn col(name: &'static str, ty: ColumnType, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        doc,
        encoding: Encoding::Default,
    }
}

pub(crate) const fn opt(name: &'static str, ty: ColumnType, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        doc,
        encoding: Encoding::Default,
    }
}

use ColumnType::*;

mod deezer;
mod eventsim;
mod lastfm;
mod meta;
mod sparkify;

pub use deezer::*;
pub use eventsim::*;
pub use lastfm::*;
pub use meta::*;
pub use sparkify::*;

#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    pub layer: Layer,
    /// The source the table belongs to (`lastfm`), or `None` for lake-wide tables.
    pub source: Option<&'static str>,
    /// The table's own name within its source folder (`listens`).
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column],
    pub partition_by: &'static [&'static str],
}

impl TableDef {
    /// Location relative to the lake root, e.g. `silver/lastfm/listens`.
    pub fn path(&self) -> String {
        match self.source {
            Some(source) => format!("{}/{}/{}", self.layer.as_str(), source, self.name),
            None => format!("{}/{}", self.layer.as_str(), self.name),
        }
    }

    /// Whether `other` names the same table (layer, source and name), without building either
    /// name: cheap enough for a per-record check.
    pub fn is(&self, other: &TableDef) -> bool {
        self.layer == other.layer && self.source == other.source && self.name == other.name
    }

    /// The table's name in SQL without the layer, e.g. `lastfm_listens`.
    pub fn sql_name(&self) -> String {
        match self.source {
            Some(source) => format!("{source}_{}", self.name),
            None => self.name.to_string(),
        }
    }

    /// The schema-qualified SQL name, e.g. `silver.lastfm_listens`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.layer.as_str(), self.sql_name())
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The names of the lineage columns every bronze table carries (bronze fills them by name).
pub const SOURCE_OBJECT: &str = "source_object";
pub const SOURCE_LINE: &str = "source_line";
pub const BATCH: &str = "batch";
pub const RUN_ID: &str = "run_id";
pub const INGESTED_AT: &str = "ingested_at";

/// Lineage columns every bronze table carries, after its own fields.
pub const LINEAGE: [Column; 5] = [
    col(
        SOURCE_OBJECT,
        Text,
        "Landing object the line came from (URI; `archive.tar.gz!member` inside an archive).",
    ),
    col(
        SOURCE_LINE,
        Int64,
        "1-based line number inside the source object.",
    )
    .delta(),
    col(
        BATCH,
        Int64,
        "Bronze batch that landed the line (`meta.landed_objects.batch`); silver reads the batches it has not consumed yet.",
    ),
    col(RUN_ID, Text, "Id of the bronze run that landed the line."),
    col(
        INGESTED_AT,
        Timestamp,
        "When the bronze run landed the line.",
    ),
];

/// Whether `name` is one of the bronze [`LINEAGE`] columns.
pub fn is_lineage(name: &str) -> bool {
    LINEAGE.iter().any(|c| c.name == name)
}

/// Columns shared by every quarantine table (bronze and silver, every source).
pub(crate) const QUARANTINE_COLUMNS: &[Column] = &[
    col("table_name", Text, "The table the row was meant for."),
    col("source_object", Text, "Landing object the row came from."),
    col(
        "source_line",
        Int64,
        "1-based line number inside the source object.",
    ),
    col(
        "raw_line",
        Text,
        "The line as read (invalid UTF-8 replaced by U+FFFD); for silver, the bronze fields joined by tabs.",
    ),
    col("reason", Text, "Why the row was not accepted, in words."),
    col(
        "batch",
        Int64,
        "Bronze batch the row came from (`meta.landed_objects.batch`).",
    ),
    col("run_id", Text, "Id of the run that quarantined the row."),
    col("quarantined_at", Timestamp, "When the row was quarantined."),
];

pub(crate) const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [Column; A],
    b: [Column; B],
) -> [Column; N] {
    assert!(A + B == N);
    let mut out = [col("", Text, ""); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// Every table of the lake, in catalogue order.
pub const CATALOGUE: &[&TableDef] = &[
    &BRONZE_LASTFM_PLAYS,
    &BRONZE_LASTFM_PROFILES,
    &BRONZE_LASTFM_QUARANTINE,
    &BRONZE_SPARKIFY_SONGS,
    &BRONZE_SPARKIFY_EVENTS,
    &BRONZE_SPARKIFY_QUARANTINE,
    &BRONZE_DEEZER_LISTENS,
    &BRONZE_DEEZER_QUARANTINE,
    &BRONZE_EVENTSIM_LISTEN_EVENTS,
    &BRONZE_EVENTSIM_PAGE_VIEW_EVENTS,
    &BRONZE_EVENTSIM_AUTH_EVENTS,
    &BRONZE_EVENTSIM_STATUS_CHANGE_EVENTS,
    &BRONZE_EVENTSIM_QUARANTINE,
    &SILVER_LASTFM_LISTENS,
    &SILVER_LASTFM_USERS,
    &SILVER_LASTFM_QUARANTINE,
    &SILVER_SPARKIFY_SONGPLAYS,
    &SILVER_SPARKIFY_USERS,
    &SILVER_SPARKIFY_USERS_HISTORY,
    &SILVER_SPARKIFY_SONGS,
    &SILVER_SPARKIFY_ARTISTS,
    &SILVER_SPARKIFY_TIME,
    &SILVER_SPARKIFY_QUARANTINE,
    &SILVER_DEEZER_STREAMS,
    &SILVER_DEEZER_COUNTRY_SONG_DAILY,
    &SILVER_DEEZER_USER_SONG_DAILY,
    &SILVER_DEEZER_QUARANTINE,
    &SILVER_EVENTSIM_LISTEN_EVENTS,
    &SILVER_EVENTSIM_PAGE_VIEW_EVENTS,
    &SILVER_EVENTSIM_AUTH_EVENTS,
    &SILVER_EVENTSIM_STATUS_CHANGE_EVENTS,
    &SILVER_EVENTSIM_QUARANTINE,
    &GOLD_LASTFM_SESSIONS,
    &GOLD_LASTFM_TOP_SESSIONS,
    &GOLD_LASTFM_TOP_SONGS,
    &GOLD_LASTFM_COUNTRY_TOP50,
    &GOLD_SPARKIFY_SESSIONS,
    &GOLD_SPARKIFY_TOP_SESSIONS,
    &GOLD_SPARKIFY_TOP_SONGS,
    &GOLD_SPARKIFY_PLAYS_BY_HOUR,
    &GOLD_SPARKIFY_DAILY_ACTIVE_USERS,
    &GOLD_SPARKIFY_TOP_SONGS_DAILY,
    &GOLD_SPARKIFY_TOP_ARTISTS_DAILY,
    &GOLD_SPARKIFY_CONVERSIONS_DAILY,
    &GOLD_DEEZER_COUNTRY_TOP50,
    &GOLD_DEEZER_USER_TOP50,
    &GOLD_DEEZER_CHART_DAYS,
    &GOLD_EVENTSIM_DIM_USERS,
    &GOLD_EVENTSIM_DIM_SONGS,
    &GOLD_EVENTSIM_DIM_ARTISTS,
    &GOLD_EVENTSIM_DIM_LOCATION,
    &GOLD_EVENTSIM_FACT_STREAMS,
    &GOLD_EVENTSIM_ACTIVITY_DAILY,
    &GOLD_EVENTSIM_ACTIVITY_HOURLY,
    &GOLD_EVENTSIM_STREAMS_BY_STATE,
    &GOLD_EVENTSIM_SESSIONS,
    &GOLD_EVENTSIM_TOP_SESSIONS,
    &GOLD_EVENTSIM_TOP_SONGS,
    &GOLD_EVENTSIM_DAILY_ACTIVE_USERS,
    &GOLD_EVENTSIM_TOP_SONGS_DAILY,
    &GOLD_EVENTSIM_TOP_ARTISTS_DAILY,
    &META_RUNS,
    &META_LANDED_OBJECTS,
];

/// Look a table up by its qualified SQL name (`silver.lastfm_listens`).
pub fn by_qualified_name(name: &str) -> Option<&'static TableDef> {
    CATALOGUE
        .iter()
        .copied()
        .find(|t| t.qualified_name() == name)
}

/// The README's table catalogue, generated from the definitions above.
pub fn catalogue_markdown() -> String {
    let mut out = String::new();
    for t in CATALOGUE {
        let _ = writeln!(out, "#### `{}`\n", t.qualified_name());
        let _ = writeln!(
            out,
            "{}\n",
            t.doc.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let parts = if t.partition_by.is_empty() {
            "none".to_string()
        } else {
            t.partition_by
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "Location `<lake>/{}` · partitioned by {parts}\n",
            t.path()
        );
        let _ = writeln!(out, "| column | type | null | meaning |");
        let _ = writeln!(out, "|---|---|---|---|");
        for c in t.columns {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                c.name,
                c.ty.sql_name(),
                if c.nullable { "yes" } else { "no" },
                c.doc
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_column_is_a_column_of_its_table() {
        for t in CATALOGUE {
            for p in t.partition_by {
                assert!(
                    t.column(p).is_some(),
                    "{}: no column {p}",
                    t.qualified_name()
                );
            }
        }
    }

    #[test]
    fn delta_encoded_columns_are_integers_times_or_text() {
        // Parquet defines DELTA_BINARY_PACKED for INT32/INT64 and DELTA_BYTE_ARRAY for byte
        // arrays only; a float or boolean column marked `delta()` would fail at write time.
        for t in CATALOGUE {
            for c in t.columns.iter().filter(|c| c.encoding == Encoding::Delta) {
                assert!(
                    matches!(c.ty, Int32 | Int64 | Date | Timestamp | Text),
                    "{}.{} is {:?}",
                    t.qualified_name(),
                    c.name,
                    c.ty
                );
            }
        }
    }

    #[test]
    fn names_and_paths_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for t in CATALOGUE {
            assert!(
                seen.insert(t.qualified_name()),
                "{} twice",
                t.qualified_name()
            );
            for c in t.columns {
                assert!(
                    !c.name.is_empty()
                        && c.name
                            .chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                    "{}.{} is not snake_case",
                    t.qualified_name(),
                    c.name
                );
            }
        }
    }

    #[test]
    fn timestamps_are_utc_microseconds() {
        let schema = SILVER_LASTFM_LISTENS.arrow_schema();
        let played_at = schema
            .field_with_name("played_at")
            .map(|f| f.data_type().clone());
        assert_eq!(
            played_at.ok(),
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
    }

    #[test]
    fn readme_catalogue_matches_the_definitions() {
        let readme = include_str!("../../README.md");
        let begin = "<!-- catalogue:begin -->\n";
        let end = "<!-- catalogue:end -->";
        let start = readme.find(begin).map(|i| i + begin.len());
        let stop = readme.find(end);
        let (Some(start), Some(stop)) = (start, stop) else {
            panic!("README.md has no catalogue markers");
        };
        assert!(
            readme[start..stop] == catalogue_markdown(),
            "README's table catalogue is stale: run `make catalogue`"
        );
    }
}
