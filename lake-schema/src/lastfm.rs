//! Last.fm 1K: plays and user profiles, and the gold tables every source with plays shares.

use crate::*;

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

// Gold: the same tables for every source with plays, computed by one set of SQL files.

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
          the previous play's start (1200 s continues, 1201 s starts a new session). Partitioned by the month \
          a session starts in: a delivery of later plays rewrites the months from the first session it can \
          reach, not every session.",
    columns: &concat::<5, 2, 7>(
        SESSION_COLUMNS,
        [
            col("year", Int32, "Year of `started_at` (partition)."),
            col("month", Int32, "Month of `started_at` (partition)."),
        ],
    ),
    partition_by: &["year", "month"],
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

pub const GOLD_LASTFM_COUNTRY_TOP50: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(LASTFM),
    name: "country_top50",
    doc: "Weekly: for each week with plays (Monday to Sunday, dated by its Sunday), each country's 50 most \
          played songs, by the country of the user's profile (users without one are left out). The same chart \
          SQL as Deezer's country charts, over the 7 days of the week; ties go to the smaller song in byte order.",
    columns: &[
        col(
            "chart_date",
            Date,
            "The week's Sunday D: the chart counts the plays of D-6 to D.",
        ),
        col("country", Text, "Country of the user's profile."),
        col(
            "rank",
            Int32,
            "1 = most plays; ties go to the smaller song in byte order.",
        ),
        col("song", Text, "`artist name — track name`, as written."),
        col("streams", Int64, "Plays in the week."),
        col("year", Int32, "Year of `chart_date` (partition)."),
        col("month", Int32, "Month of `chart_date` (partition)."),
    ],
    partition_by: &["year", "month"],
};
