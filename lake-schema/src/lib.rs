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

const fn col(name: &'static str, ty: ColumnType, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        doc,
        encoding: Encoding::Default,
    }
}

const fn opt(name: &'static str, ty: ColumnType, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        doc,
        encoding: Encoding::Default,
    }
}

use ColumnType::*;

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
const QUARANTINE_COLUMNS: &[Column] = &[
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

const fn concat<const A: usize, const B: usize, const N: usize>(
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

// ---------------------------------------------------------------------------------------------
// Last.fm 1K
// ---------------------------------------------------------------------------------------------

pub const LASTFM: &str = "lastfm";

pub const BRONZE_LASTFM_PLAYS: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(LASTFM),
    name: "plays",
    doc: "Every well-formed line of the Last.fm plays files, its six fields as text exactly as written.",
    columns: &concat::<6, 5, 11>(
        [
            col("user_id", Text, "Field 1, e.g. `user_000001`."),
            col("timestamp", Text, "Field 2, e.g. `2009-05-04T23:08:57Z`.").delta(),
            col(
                "artist_mbid",
                Text,
                "Field 3; empty when Last.fm had no MBID.",
            ),
            col("artist_name", Text, "Field 4."),
            col(
                "track_mbid",
                Text,
                "Field 5; empty when Last.fm had no MBID.",
            ),
            col("track_name", Text, "Field 6."),
        ],
        LINEAGE,
    ),
    partition_by: &[],
};

pub const BRONZE_LASTFM_PROFILES: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(LASTFM),
    name: "profiles",
    doc: "Every well-formed line of `userid-profile.tsv` (header excluded), its five fields as text.",
    columns: &concat::<5, 5, 10>(
        [
            col("user_id", Text, "Field 1 (`#id` in the header)."),
            col("gender", Text, "Field 2: `m`, `f` or empty."),
            col("age", Text, "Field 3; often empty."),
            col("country", Text, "Field 4; may be empty."),
            col(
                "registered",
                Text,
                "Field 5, e.g. `Aug 13, 2006`; may be empty.",
            ),
        ],
        LINEAGE,
    ),
    partition_by: &[],
};

pub const BRONZE_LASTFM_QUARANTINE: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(LASTFM),
    name: "quarantine",
    doc: "Lines bronze could not land (wrong field count, invalid UTF-8), with the reason.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

pub const SILVER_LASTFM_LISTENS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(LASTFM),
    name: "listens",
    doc: "One row per distinct play (user, time, artist name, track name); exact duplicates count once. \
          Rows with an empty or blank user id, artist name or track name, or a timestamp that is not a valid \
          `YYYY-MM-DDTHH:MM:SSZ`, go to `silver.lastfm_quarantine`. Names are kept exactly as written.",
    columns: &[
        col("user_id", Text, "Last.fm user id."),
        col("played_at", Timestamp, "When the play started (UTC).").delta(),
        opt(
            "artist_mbid",
            Text,
            "MusicBrainz artist id; null when empty in the source.",
        ),
        col("artist_name", Text, "Artist name as written."),
        opt(
            "track_mbid",
            Text,
            "MusicBrainz recording id; null when empty in the source.",
        ),
        col("track_name", Text, "Track name as written."),
        col(
            "source_object",
            Text,
            "Landing object of the play (first one, if duplicated).",
        ),
        col(
            "source_line",
            Int64,
            "Line number of the play in that object.",
        )
        .delta(),
        col("year", Int32, "Year of `played_at` (partition)."),
        col("month", Int32, "Month of `played_at`, 1–12 (partition)."),
    ],
    partition_by: &["year", "month"],
};

pub const SILVER_LASTFM_USERS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(LASTFM),
    name: "users",
    doc: "One row per Last.fm user from the profile file. Empty fields are null.",
    columns: &[
        col("user_id", Text, "Last.fm user id."),
        opt("gender", Text, "`m` or `f`; null when empty."),
        opt(
            "age",
            Int32,
            "Age as given by the user (unchecked); null when empty.",
        ),
        opt("country", Text, "Country name; null when empty."),
        opt(
            "registered",
            Date,
            "Sign-up date, from `Aug 13, 2006`; null when empty.",
        ),
    ],
    partition_by: &[],
};

pub const SILVER_LASTFM_QUARANTINE: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(LASTFM),
    name: "quarantine",
    doc: "Bronze rows silver rejected (blank ids or names, invalid timestamps, unparsable profile fields), \
          with the reason and the bronze lineage.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

// ---------------------------------------------------------------------------------------------
// Sparkify (song metadata and eventsim activity logs)
// ---------------------------------------------------------------------------------------------

pub const SPARKIFY: &str = "sparkify";

pub const BRONZE_SPARKIFY_SONGS: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(SPARKIFY),
    name: "songs",
    doc: "Every JSON record of `song_data/` (one song per file), as its raw JSON text: bronze does not guess types.",
    columns: &concat::<1, 5, 6>(
        [col(
            "record",
            Text,
            "The record's JSON text, exactly as written.",
        )],
        LINEAGE,
    ),
    partition_by: &[],
};

pub const BRONZE_SPARKIFY_EVENTS: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(SPARKIFY),
    name: "events",
    doc: "Every JSON line of `log_data/` (eventsim activity events), as its raw JSON text.",
    columns: &concat::<1, 5, 6>(
        [col(
            "record",
            Text,
            "The event's JSON text, exactly as written.",
        )],
        LINEAGE,
    ),
    partition_by: &[],
};

pub const BRONZE_SPARKIFY_QUARANTINE: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(SPARKIFY),
    name: "quarantine",
    doc: "Sparkify records bronze could not land (not valid JSON, invalid UTF-8, unreadable archive), with the reason.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

pub const SILVER_SPARKIFY_SONGPLAYS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "songplays",
    doc: "The fact table: one row per `NextSong` event of a logged-in user. `song_id`/`artist_id` come from \
          matching the event's song title, artist name and length with `songs` and `artists` (null when \
          nothing matches); the event's own title and artist name are kept for the gold queries. Titles \
          and names are repaired where they were double-encoded UTF-8; `user_agent` loses its literal quotes.",
    columns: &[
        col(
            "songplay_id",
            Text,
            "Stable id derived from the event (md5 of user, session, item in session and time).",
        ),
        col(
            "start_time",
            Timestamp,
            "When the song started (UTC), from `ts` in epoch milliseconds.",
        ),
        col("user_id", Text, "Sparkify user id (`userId`)."),
        col("level", Text, "`free` or `paid` at the time of the event."),
        opt(
            "song_id",
            Text,
            "Matched song, null when the song data has no such song.",
        ),
        opt(
            "artist_id",
            Text,
            "Matched artist, null when there is no match.",
        ),
        col("session_id", Int64, "Sparkify's own `sessionId`."),
        col(
            "item_in_session",
            Int64,
            "Position of the event in its session.",
        ),
        opt("location", Text, "User's location."),
        opt(
            "user_agent",
            Text,
            "Browser user agent, without the literal surrounding quotes.",
        ),
        col(
            "song_title",
            Text,
            "Song title from the event (mojibake repaired).",
        ),
        col(
            "artist_name",
            Text,
            "Artist name from the event (mojibake repaired).",
        ),
        opt(
            "song_length",
            Float64,
            "Song length in seconds from the event.",
        ),
        col("source_object", Text, "Landing object of the event."),
        col("source_line", Int64, "Line of the event in that object."),
        col("year", Int32, "Year of `start_time` (partition)."),
        col("month", Int32, "Month of `start_time` (partition)."),
    ],
    partition_by: &["year", "month"],
};

const SPARKIFY_USER_COLUMNS: [Column; 6] = [
    col("user_id", Text, "Sparkify user id."),
    opt("first_name", Text, "First name."),
    opt("last_name", Text, "Last name."),
    opt("gender", Text, "`M` or `F`."),
    opt(
        "registered_at",
        Timestamp,
        "Sign-up time, from `registration` (epoch milliseconds written as a float).",
    ),
    col("level", Text, "`free` or `paid`."),
];

pub const SILVER_SPARKIFY_USERS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "users",
    doc: "One row per logged-in user (`userId` \"\" is a logged-out visitor, not a user), with the level of \
          their latest event.",
    columns: &SPARKIFY_USER_COLUMNS,
    partition_by: &[],
};

pub const SILVER_SPARKIFY_USERS_HISTORY: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "users_history",
    doc: "One row per period a user spent on one level (type-2 slowly changing dimension): users move \
          between free and paid.",
    columns: &concat::<6, 3, 9>(
        SPARKIFY_USER_COLUMNS,
        [
            col("valid_from", Timestamp, "First event on this level."),
            opt(
                "valid_to",
                Timestamp,
                "First event on the next level; null for the current period.",
            ),
            col(
                "is_current",
                Boolean,
                "Whether this is the user's current level.",
            ),
        ],
    ),
    partition_by: &[],
};

pub const SILVER_SPARKIFY_SONGS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "songs",
    doc: "One row per song of the song data.",
    columns: &[
        col("song_id", Text, "Song id."),
        col("title", Text, "Title."),
        col("artist_id", Text, "Artist id (partition)."),
        opt(
            "year",
            Int32,
            "Release year; null where the data has the sentinel 0 (partition).",
        ),
        col("duration", Float64, "Length in seconds."),
    ],
    partition_by: &["year", "artist_id"],
};

pub const SILVER_SPARKIFY_ARTISTS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "artists",
    doc: "One row per artist, even where the artist appears in several song files (the first file's \
          attributes are kept).",
    columns: &[
        col("artist_id", Text, "Artist id."),
        col("name", Text, "Artist name."),
        opt("location", Text, "Location; null when empty."),
        opt("latitude", Float64, "Latitude."),
        opt("longitude", Float64, "Longitude."),
    ],
    partition_by: &[],
};

pub const SILVER_SPARKIFY_TIME: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "time",
    doc: "One row per distinct song play start time, broken into units.",
    columns: &[
        col("start_time", Timestamp, "The instant (UTC)."),
        col("hour", Int32, "Hour of day, 0–23."),
        col("day", Int32, "Day of month."),
        col("week", Int32, "ISO week of year."),
        col("month", Int32, "Month, 1–12 (partition)."),
        col("year", Int32, "Year (partition)."),
        col("weekday", Int32, "Day of week, 0 = Sunday … 6 = Saturday."),
    ],
    partition_by: &["year", "month"],
};

pub const SILVER_SPARKIFY_QUARANTINE: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(SPARKIFY),
    name: "quarantine",
    doc: "Bronze Sparkify records silver rejected (missing keys, wrong JSON types, a song play without a \
          user or song), with the reason and the bronze lineage.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

// ---------------------------------------------------------------------------------------------
// Gold: the same tables for every source, computed by one set of SQL files.
// ---------------------------------------------------------------------------------------------

const SESSION_COLUMNS: [Column; 5] = [
    col("user_id", Text, "User whose session it is."),
    col(
        "session_number",
        Int64,
        "1 for the user's first session, counting up in time.",
    ),
    col(
        "started_at",
        Timestamp,
        "Start of the session's first play.",
    ),
    col("ended_at", Timestamp, "Start of the session's last play."),
    col("play_count", Int64, "Plays in the session."),
];

pub const GOLD_LASTFM_SESSIONS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(LASTFM),
    name: "sessions",
    doc: "Listening sessions: a play continues its user's session when it starts at most 1200 s after \
          the previous play's start (1200 s continues, 1201 s starts a new session).",
    columns: &SESSION_COLUMNS,
    partition_by: &[],
};

pub const GOLD_LASTFM_TOP_SESSIONS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(LASTFM),
    name: "top_sessions",
    doc: "The 50 sessions with most plays; ties by earlier start, then user id.",
    columns: &concat::<1, 5, 6>([col("rank", Int32, "1 = most plays.")], SESSION_COLUMNS),
    partition_by: &[],
};

pub const GOLD_LASTFM_TOP_SONGS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(LASTFM),
    name: "top_songs",
    doc: "The 10 songs (artist name, track name) with most plays inside the top 50 sessions; ties by \
          artist name, then track name, in ascending byte order. Also delivered as `gold/<source>/top_songs.tsv`.",
    columns: &[
        col("rank", Int32, "1 = most plays."),
        col("track_name", Text, "Track name as written."),
        col("artist_name", Text, "Artist name as written."),
        col(
            "play_count",
            Int64,
            "Plays of the song inside the top 50 sessions.",
        ),
    ],
    partition_by: &[],
};

pub const GOLD_SPARKIFY_SESSIONS: TableDef = TableDef {
    source: Some(SPARKIFY),
    ..GOLD_LASTFM_SESSIONS
};

pub const GOLD_SPARKIFY_TOP_SESSIONS: TableDef = TableDef {
    source: Some(SPARKIFY),
    ..GOLD_LASTFM_TOP_SESSIONS
};

pub const GOLD_SPARKIFY_TOP_SONGS: TableDef = TableDef {
    source: Some(SPARKIFY),
    ..GOLD_LASTFM_TOP_SONGS
};

pub const GOLD_SPARKIFY_PLAYS_BY_HOUR: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(SPARKIFY),
    name: "plays_by_hour",
    doc: "Song plays by day of week and hour of day (UTC), split by level.",
    columns: &[
        col("weekday", Int32, "0 = Sunday … 6 = Saturday."),
        col("hour", Int32, "Hour of day, 0–23."),
        col("level", Text, "`free` or `paid`."),
        col("plays", Int64, "Song plays."),
    ],
    partition_by: &[],
};

pub const GOLD_SPARKIFY_DAILY_ACTIVE_USERS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(SPARKIFY),
    name: "daily_active_users",
    doc: "Users with at least one song play per day (UTC), in all and by the level they played on.",
    columns: &[
        col("day", Date, "The day."),
        col(
            "active_users",
            Int64,
            "Distinct users with an event that day.",
        ),
        col(
            "paid_users",
            Int64,
            "Of those, users with a paid event that day.",
        ),
        col(
            "free_users",
            Int64,
            "Of those, users with a free event that day.",
        ),
    ],
    partition_by: &[],
};

pub const GOLD_SPARKIFY_TOP_SONGS_DAILY: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(SPARKIFY),
    name: "top_songs_daily",
    doc: "The 10 most played songs (artist name, title) of each day; ties by artist name, then title.",
    columns: &[
        col("day", Date, "The day."),
        col("rank", Int32, "1 = most plays that day."),
        col("song_title", Text, "Title."),
        col("artist_name", Text, "Artist name."),
        col("plays", Int64, "Plays that day."),
    ],
    partition_by: &[],
};

pub const GOLD_SPARKIFY_TOP_ARTISTS_DAILY: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(SPARKIFY),
    name: "top_artists_daily",
    doc: "The 10 most played artists of each day; ties by artist name.",
    columns: &[
        col("day", Date, "The day."),
        col("rank", Int32, "1 = most plays that day."),
        col("artist_name", Text, "Artist name."),
        col("plays", Int64, "Plays that day."),
    ],
    partition_by: &[],
};

pub const GOLD_SPARKIFY_CONVERSIONS_DAILY: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(SPARKIFY),
    name: "conversions_daily",
    doc: "Free→paid conversions per day: users whose level went from free to paid between two consecutive \
          events, counted on the day of the first paid event.",
    columns: &[
        col("day", Date, "The day."),
        col("conversions", Int64, "Users who upgraded that day."),
    ],
    partition_by: &[],
};

// ---------------------------------------------------------------------------------------------
// Meta
// ---------------------------------------------------------------------------------------------

pub const META_RUNS: TableDef = TableDef {
    layer: Layer::Meta,
    source: None,
    name: "runs",
    doc: "One row per job run: what it read, what it wrote and how it ended. The same record is the \
          last line a job prints on stdout.",
    columns: &[
        col("run_id", Text, "Unique id of the run."),
        col("job", Text, "`bronze`, `silver` or `gold`."),
        col("version", Text, "Version of the job binary."),
        col("started_at", Timestamp, "Start of the run."),
        col("finished_at", Timestamp, "End of the run."),
        col("outcome", Text, "`succeeded` or `failed`."),
        col("rows_in", Int64, "Rows (or lines) read."),
        col("rows_out", Int64, "Rows written to the layer's tables."),
        col("rows_quarantined", Int64, "Rows written to quarantine."),
        col(
            "record",
            Text,
            "The whole run record as JSON: arguments, inputs, outputs with their Delta versions, counts.",
        ),
    ],
    partition_by: &[],
};

pub const META_LANDED_OBJECTS: TableDef = TableDef {
    layer: Layer::Meta,
    source: None,
    name: "landed_objects",
    doc: "Landing objects bronze has landed, so that a re-run lands only new or changed objects.",
    columns: &[
        col("source", Text, "Source folder in landing, e.g. `lastfm`."),
        col("object", Text, "URI of the landing object."),
        col("size", Int64, "Size in bytes when landed."),
        opt("e_tag", Text, "ETag (or local file version) when landed."),
        col(
            "batch",
            Int64,
            "Bronze batch the object belongs to: claimed here before its rows are written, each bronze table then records the batches it holds as its Delta transaction `lake.bronze`.",
        ),
        col("run_id", Text, "Bronze run that landed it."),
        col("landed_at", Timestamp, "When it was landed."),
    ],
    partition_by: &[],
};

/// Every table of the lake, in catalogue order.
pub const CATALOGUE: &[&TableDef] = &[
    &BRONZE_LASTFM_PLAYS,
    &BRONZE_LASTFM_PROFILES,
    &BRONZE_LASTFM_QUARANTINE,
    &BRONZE_SPARKIFY_SONGS,
    &BRONZE_SPARKIFY_EVENTS,
    &BRONZE_SPARKIFY_QUARANTINE,
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
    &GOLD_LASTFM_SESSIONS,
    &GOLD_LASTFM_TOP_SESSIONS,
    &GOLD_LASTFM_TOP_SONGS,
    &GOLD_SPARKIFY_SESSIONS,
    &GOLD_SPARKIFY_TOP_SESSIONS,
    &GOLD_SPARKIFY_TOP_SONGS,
    &GOLD_SPARKIFY_PLAYS_BY_HOUR,
    &GOLD_SPARKIFY_DAILY_ACTIVE_USERS,
    &GOLD_SPARKIFY_TOP_SONGS_DAILY,
    &GOLD_SPARKIFY_TOP_ARTISTS_DAILY,
    &GOLD_SPARKIFY_CONVERSIONS_DAILY,
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
