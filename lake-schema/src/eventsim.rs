//! eventsim: a music service's activity as four event streams (listens, page views, logins,
//! status changes), JSON lines as Fluentd writes them, conformed into facts and dimensions after
//! Streamify's model.

use crate::*;

pub const EVENTSIM: &str = "eventsim";

/// A bronze table of one eventsim stream: each line as its raw JSON text.
const fn bronze_stream(name: &'static str, doc: &'static str) -> TableDef {
    TableDef {
        layer: Layer::Bronze,
        source: Some(EVENTSIM),
        name,
        doc,
        columns: &BRONZE_EVENT_COLUMNS,
        partition_by: &[],
    }
}

const BRONZE_EVENT_COLUMNS: [Column; 6] = concat::<1, 5, 6>(
    [col(
        "record",
        Text,
        "The event's JSON text, exactly as written.",
    )],
    LINEAGE,
);

pub const BRONZE_EVENTSIM_LISTEN_EVENTS: TableDef = bronze_stream(
    "listen_events",
    "Every JSON line of `listen_events/` (a song played), as its raw JSON text.",
);
pub const BRONZE_EVENTSIM_PAGE_VIEW_EVENTS: TableDef = bronze_stream(
    "page_view_events",
    "Every JSON line of `page_view_events/` (a page seen), as its raw JSON text.",
);
pub const BRONZE_EVENTSIM_AUTH_EVENTS: TableDef = bronze_stream(
    "auth_events",
    "Every JSON line of `auth_events/` (a login attempt), as its raw JSON text.",
);
pub const BRONZE_EVENTSIM_STATUS_CHANGE_EVENTS: TableDef = bronze_stream(
    "status_change_events",
    "Every JSON line of `status_change_events/` (an upgrade, downgrade or cancellation), as its raw JSON text.",
);

pub const BRONZE_EVENTSIM_QUARANTINE: TableDef = TableDef {
    layer: Layer::Bronze,
    source: Some(EVENTSIM),
    name: "quarantine",
    doc: "eventsim lines bronze could not land (not valid JSON, invalid UTF-8, an unreadable gzip), with the reason.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

/// The columns every eventsim event has in silver, before its stream's own.
const EVENT_COLUMNS: [Column; 15] = [
    col(
        "event_time",
        Timestamp,
        "When (UTC), from `ts` in epoch milliseconds.",
    ),
    col("session_id", Int64, "eventsim's `sessionId`."),
    col(
        "item_in_session",
        Int64,
        "Position of the event in its session.",
    ),
    opt(
        "user_id",
        Int64,
        "`userId` (a number, or a numeric string in older outputs); null for a guest.",
    ),
    col("level", Text, "`free` or `paid` at the time of the event."),
    opt("first_name", Text, "First name; null for a guest."),
    opt("last_name", Text, "Last name; null for a guest."),
    opt("gender", Text, "`M` or `F`; null for a guest."),
    opt(
        "registered_at",
        Timestamp,
        "Sign-up time, from `registration` (epoch ms); null for a guest.",
    ),
    opt("city", Text, "City."),
    opt("zip", Text, "ZIP code, as text (leading zeros kept)."),
    opt("state", Text, "US state code."),
    opt("lat", Float64, "Latitude."),
    opt("lon", Float64, "Longitude."),
    opt(
        "user_agent",
        Text,
        "Browser user agent, without the literal surrounding quotes.",
    ),
];

const EVENT_LINEAGE: [Column; 4] = [
    col(
        "source_object",
        Text,
        "Landing object of the event (its first copy).",
    ),
    col("source_line", Int64, "Line of the event in that object."),
    col("year", Int32, "Year of `event_time` (partition)."),
    col("month", Int32, "Month of `event_time` (partition)."),
];

const SONG_COLUMNS: [Column; 3] = [
    col("artist", Text, "Artist name (mojibake repaired)."),
    col("song", Text, "Song title (mojibake repaired)."),
    col(
        "duration",
        Float64,
        "Length in seconds (`duration`, or `length` in older outputs).",
    ),
];

const fn silver_stream(
    name: &'static str,
    doc: &'static str,
    columns: &'static [Column],
) -> TableDef {
    TableDef {
        layer: Layer::Silver,
        source: Some(EVENTSIM),
        name,
        doc,
        columns,
        partition_by: &["year", "month"],
    }
}

pub const SILVER_EVENTSIM_LISTEN_EVENTS: TableDef = silver_stream(
    "listen_events",
    "One row per song played. The events of every eventsim stream are typed alike: types are checked, not \
     coerced (a missing `ts`, `sessionId` or `itemInSession`, or a value of the wrong JSON type, sends the event \
     to `silver.eventsim_quarantine`); an event is identified by (`ts`, `sessionId`, `itemInSession`) within its \
     stream and counted once, since Fluentd and Kafka deliver at least once.",
    &concat::<19, 4, 23>(
        concat::<15, 4, 19>(
            EVENT_COLUMNS,
            [
                SONG_COLUMNS[0],
                SONG_COLUMNS[1],
                SONG_COLUMNS[2],
                col("auth", Text, "`Logged In`."),
            ],
        ),
        EVENT_LINEAGE,
    ),
);

pub const SILVER_EVENTSIM_PAGE_VIEW_EVENTS: TableDef = silver_stream(
    "page_view_events",
    "One row per page seen, by users and guests; a `NextSong` page carries the song.",
    &concat::<22, 4, 26>(
        concat::<15, 7, 22>(
            EVENT_COLUMNS,
            [
                col(
                    "page",
                    Text,
                    "The page, e.g. `NextSong`, `Home`, `Submit Upgrade`.",
                ),
                col(
                    "auth",
                    Text,
                    "`Logged In`, `Logged Out`, `Guest` or `Cancelled`.",
                ),
                opt("method", Text, "HTTP method."),
                opt("status", Int64, "HTTP status."),
                opt(
                    "artist",
                    Text,
                    "Artist name on `NextSong` (mojibake repaired).",
                ),
                opt(
                    "song",
                    Text,
                    "Song title on `NextSong` (mojibake repaired).",
                ),
                opt("duration", Float64, "Length in seconds on `NextSong`."),
            ],
        ),
        EVENT_LINEAGE,
    ),
);

pub const SILVER_EVENTSIM_AUTH_EVENTS: TableDef = silver_stream(
    "auth_events",
    "One row per login attempt.",
    &concat::<16, 4, 20>(
        concat::<15, 1, 16>(
            EVENT_COLUMNS,
            [col("success", Boolean, "Whether the login succeeded.")],
        ),
        EVENT_LINEAGE,
    ),
);

pub const SILVER_EVENTSIM_STATUS_CHANGE_EVENTS: TableDef = silver_stream(
    "status_change_events",
    "One row per status change: an upgrade (to `paid`), a downgrade (to `free`), a cancellation (auth `Cancelled`); \
     `level` and `auth` are the new ones.",
    &concat::<16, 4, 20>(
        concat::<15, 1, 16>(
            EVENT_COLUMNS,
            [col(
                "auth",
                Text,
                "`Logged In`, or `Cancelled` for a cancellation.",
            )],
        ),
        EVENT_LINEAGE,
    ),
);

pub const SILVER_EVENTSIM_QUARANTINE: TableDef = TableDef {
    layer: Layer::Silver,
    source: Some(EVENTSIM),
    name: "quarantine",
    doc: "eventsim events silver rejected (a missing key, a value of the wrong JSON type), with the rule broken \
          and the bronze lineage.",
    columns: QUARANTINE_COLUMNS,
    partition_by: &[],
};

// Gold: Streamify's model (dimensions of users by level period, songs, artists, places; the
// fact of streams) and the panels of its dashboard.

pub const GOLD_EVENTSIM_DIM_USERS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "dim_users",
    doc: "One row per period a user spent on one level (type-2 slowly changing dimension), from the listen and \
          status-change events: a period starts with the user's first event and with every event on another level.",
    columns: &[
        col("user_id", Int64, "User id."),
        opt("first_name", Text, "First name."),
        opt("last_name", Text, "Last name."),
        opt("gender", Text, "`M` or `F`."),
        opt("registered_at", Timestamp, "Sign-up time."),
        col("level", Text, "`free` or `paid` during the period."),
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
    partition_by: &[],
};

pub const GOLD_EVENTSIM_DIM_SONGS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "dim_songs",
    doc: "One row per song played (artist name and title, as written), with a stable id.",
    columns: &[
        col("song_id", Int64, "Stable id of (artist name, title)."),
        col("title", Text, "Title."),
        col("artist_name", Text, "Artist name."),
        col(
            "artist_id",
            Int64,
            "Stable id of the artist name (`dim_artists`).",
        ),
        col("duration", Float64, "Length in seconds."),
        col("streams", Int64, "Times played."),
    ],
    partition_by: &[],
};

pub const GOLD_EVENTSIM_DIM_ARTISTS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "dim_artists",
    doc: "One row per artist played, with a stable id.",
    columns: &[
        col("artist_id", Int64, "Stable id of the artist name."),
        col("name", Text, "Artist name."),
        col("songs", Int64, "Distinct songs played."),
        col("streams", Int64, "Times played."),
    ],
    partition_by: &[],
};

pub const GOLD_EVENTSIM_DIM_LOCATION: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "dim_location",
    doc: "One row per place songs were played from, with a stable id.",
    columns: &[
        col("location_id", Int64, "Stable id of the place."),
        opt("city", Text, "City."),
        opt("state", Text, "US state code."),
        opt("zip", Text, "ZIP code."),
        opt("lat", Float64, "Latitude."),
        opt("lon", Float64, "Longitude."),
    ],
    partition_by: &[],
};

pub const GOLD_EVENTSIM_FACT_STREAMS: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "fact_streams",
    doc: "One row per song played, keyed to the dimensions by their stable ids, with the level it was played on.",
    columns: &[
        col("event_time", Timestamp, "When (UTC)."),
        opt("user_id", Int64, "User id (`dim_users`); null for a guest."),
        col("level", Text, "`free` or `paid` at the time."),
        col("song_id", Int64, "`dim_songs`."),
        col("artist_id", Int64, "`dim_artists`."),
        col("location_id", Int64, "`dim_location`."),
        col("session_id", Int64, "eventsim's session."),
        col("item_in_session", Int64, "Position in the session."),
        col("duration", Float64, "Length in seconds."),
        col("year", Int32, "Year of `event_time` (partition)."),
        col("month", Int32, "Month of `event_time` (partition)."),
    ],
    partition_by: &["year", "month"],
};

pub const GOLD_EVENTSIM_ACTIVITY_DAILY: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "activity_daily",
    doc: "One row per UTC day with an event, from the four streams.",
    columns: &[
        col("day", Date, "The day (UTC)."),
        col("streams", Int64, "Listen events that day."),
        col(
            "active_users",
            Int64,
            "Distinct users with any event that day.",
        ),
        col("logins", Int64, "Logins that succeeded."),
        col("failed_logins", Int64, "Logins that failed."),
        col("upgrades", Int64, "Status changes to `paid`."),
        col("downgrades", Int64, "Status changes to `free`."),
        col("cancellations", Int64, "Status changes to `Cancelled`."),
        col(
            "guests_sessions",
            Int64,
            "Distinct sessions with an event of no user.",
        ),
    ],
    partition_by: &[],
};

pub const GOLD_EVENTSIM_ACTIVITY_HOURLY: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "activity_hourly",
    doc: "Songs played and distinct listeners per UTC hour, by level.",
    columns: &[
        col("hour", Timestamp, "The hour's start (UTC)."),
        col("level", Text, "`free` or `paid`."),
        col("streams", Int64, "Songs played."),
        col("listeners", Int64, "Distinct users who played a song."),
    ],
    partition_by: &[],
};

pub const GOLD_EVENTSIM_STREAMS_BY_STATE: TableDef = TableDef {
    layer: Layer::Gold,
    source: Some(EVENTSIM),
    name: "streams_by_state",
    doc: "Songs played and distinct listeners per UTC day and US state.",
    columns: &[
        col("day", Date, "The day (UTC)."),
        col("state", Text, "US state code."),
        col("streams", Int64, "Songs played."),
        col("listeners", Int64, "Distinct users who played a song."),
    ],
    partition_by: &[],
};

pub const GOLD_EVENTSIM_SESSIONS: TableDef = TableDef {
    source: Some(EVENTSIM),
    ..GOLD_LASTFM_SESSIONS
};

pub const GOLD_EVENTSIM_TOP_SESSIONS: TableDef = TableDef {
    source: Some(EVENTSIM),
    ..GOLD_LASTFM_TOP_SESSIONS
};

pub const GOLD_EVENTSIM_TOP_SONGS: TableDef = TableDef {
    source: Some(EVENTSIM),
    ..GOLD_LASTFM_TOP_SONGS
};

pub const GOLD_EVENTSIM_TOP_SONGS_DAILY: TableDef = TableDef {
    source: Some(EVENTSIM),
    ..GOLD_SPARKIFY_TOP_SONGS_DAILY
};

pub const GOLD_EVENTSIM_TOP_ARTISTS_DAILY: TableDef = TableDef {
    source: Some(EVENTSIM),
    ..GOLD_SPARKIFY_TOP_ARTISTS_DAILY
};

pub const GOLD_EVENTSIM_DAILY_ACTIVE_USERS: TableDef = TableDef {
    source: Some(EVENTSIM),
    ..GOLD_SPARKIFY_DAILY_ACTIVE_USERS
};
