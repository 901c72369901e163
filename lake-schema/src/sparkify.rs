//! Sparkify: song metadata and eventsim activity logs, conformed into the course's star schema.

use crate::*;

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
