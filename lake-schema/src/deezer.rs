//! Deezer daily listening logs (`listen-YYYYMMDD.log`, one stream a line: `sng_id|user_id|country`)
//! and the daily charts of the last 7 days.

use crate::*;

pub const DEEZER: &str = "deezer";

pub const BRONZE_DEEZER_LISTENS: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(DEEZER),
    name: "listens",
    doc: "Every line of the Deezer logs with three `|`-separated fields, the fields as text exactly as written \
          (spaces, tabs and a trailing CR included), with the day of its file.",
    columns: &concat::<4, 5, 9>(
        [
            col(
                "day",
                Text,
                "The log's day, from its file name `listen-YYYYMMDD.log`, as `YYYY-MM-DD`.",
            ),
            col("sng_id", Text, "Field 1, as written."),
            col("user_id", Text, "Field 2, as written."),
            col("country", Text, "Field 3, as written."),
        ],
        LINEAGE,
    ),
    partition_by: &[],
};

pub const BRONZE_DEEZER_QUARANTINE: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(DEEZER),
    name: "quarantine",
    doc: "Deezer log lines bronze could not land (not three `|`-separated fields, blank, invalid UTF-8, an \
          unreadable gzip), with the reason.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

pub const SILVER_DEEZER_STREAMS: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(DEEZER),
    name: "streams",
    doc: "One row per valid log line: a stream. Identical lines are separate streams. A line is valid when its \
          ids are decimal digits (leading zeros allowed) that fit a signed 64-bit integer and its country is one \
          of the 249 ISO 3166-1 alpha-2 codes, spaces and tabs around a field, a CR before the line feed and a \
          BOM aside; the others go to `silver.deezer_quarantine`. When a log is landed again changed, its new \
          version replaces the old one.",
    columns: &[
        col("listen_date", Date, "The day of the stream: its log's day."),
        col("sng_id", Int64, "Song id."),
        col("user_id", Int64, "User id."),
        col(
            "country",
            Text,
            "ISO 3166-1 alpha-2 code of the country streamed from.",
        ),
        col("source_object", Text, "Landing object of the stream."),
        col("source_line", Int64, "Line of the stream in that object.").delta(),
        col("year", Int32, "Year of `listen_date` (partition)."),
        col("month", Int32, "Month of `listen_date` (partition)."),
    ],
    partition_by: &["year", "month"],
};

pub const SILVER_DEEZER_COUNTRY_SONG_DAILY: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(DEEZER),
    name: "country_song_daily",
    doc: "Streams per day, country and song: the daily aggregate the country charts roll their 7-day window \
          from, so that a new day costs one day. Rebuilt for a day when its log arrives or changes.",
    columns: &[
        col("day", Date, "The day."),
        col("country", Text, "Country code."),
        col("sng_id", Int64, "Song id."),
        col(
            "streams",
            Int64,
            "Streams of the song in the country that day.",
        ),
        col("year", Int32, "Year of `day` (partition)."),
        col("month", Int32, "Month of `day` (partition)."),
    ],
    partition_by: &["year", "month"],
};

pub const SILVER_DEEZER_USER_SONG_DAILY: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(DEEZER),
    name: "user_song_daily",
    doc: "Streams per day, user and song, whatever the country of each stream: the daily aggregate the user \
          charts roll their 7-day window from. Rebuilt for a day when its log arrives or changes.",
    columns: &[
        col("day", Date, "The day."),
        col("user_id", Int64, "User id."),
        col("sng_id", Int64, "Song id."),
        col(
            "streams",
            Int64,
            "Streams of the song by the user that day.",
        ),
        col("year", Int32, "Year of `day` (partition)."),
        col("month", Int32, "Month of `day` (partition)."),
    ],
    partition_by: &["year", "month"],
};

pub const SILVER_DEEZER_QUARANTINE: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(DEEZER),
    name: "quarantine",
    doc: "Deezer log lines silver rejected (an id that is not decimal digits or does not fit 64 bits, a country \
          that is not an ISO 3166-1 alpha-2 code), with the rule broken and the bronze lineage.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

/// The columns of a chart table, with the key it ranks songs for (country or user).
const fn chart_columns(key: Column) -> [Column; 7] {
    [
        col(
            "chart_date",
            Date,
            "The chart's day D: it counts the streams of the logs of D-6 to D.",
        ),
        key,
        col(
            "rank",
            Int32,
            "1 = most streams; ties go to the smaller song id.",
        ),
        col("sng_id", Int64, "Song id."),
        col("streams", Int64, "Streams in the 7 days."),
        col("year", Int32, "Year of `chart_date` (partition)."),
        col("month", Int32, "Month of `chart_date` (partition)."),
    ]
}

pub const GOLD_DEEZER_COUNTRY_TOP50: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(DEEZER),
    name: "country_top50",
    doc: "For each day with a log, each country's 50 most streamed songs of the last 7 days (the logs of D-6 \
          to D; missing days are left out). Also delivered as `gold/deezer/charts/country_top50_YYYYMMDD.txt`: \
          one line per country, ascending code: `CC|sng_id:streams,…` in rank order.",
    columns: &chart_columns(col("country", Text, "Country code.")),
    partition_by: &["year", "month"],
};

pub const GOLD_DEEZER_USER_TOP50: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(DEEZER),
    name: "user_top50",
    doc: "For each day with a log, each user's 50 most streamed songs of the last 7 days, whatever the country \
          of each stream. Also delivered as `gold/deezer/charts/user_top50_YYYYMMDD.txt`: one line per user, \
          ascending id: `user_id|sng_id:streams,…` in rank order.",
    columns: &chart_columns(col("user_id", Int64, "User id.")),
    partition_by: &["year", "month"],
};

pub const GOLD_DEEZER_CHART_DAYS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(DEEZER),
    name: "chart_days",
    doc: "One row per chart date charted: the window it covered and the bronze batches it saw. A date is charted \
          again when a log of its window arrives or changes (a newer batch), so a late file for an older day \
          redoes the days whose window holds it.",
    columns: &[
        col("chart_date", Date, "The chart's day."),
        col(
            "window_batch",
            Int64,
            "The newest bronze batch among the logs of the window when it was charted.",
        ),
        col(
            "days_present",
            Text,
            "The days of the window that had a log, comma-separated.",
        ),
        col(
            "days_missing",
            Text,
            "The days of the window without a log, comma-separated (empty when none).",
        ),
        col("run_id", Text, "The gold run that charted it."),
        col("charted_at", Timestamp, "When."),
    ],
    partition_by: &[],
};
