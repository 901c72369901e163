//! The sources gold runs over, declared: which silver tables each reads, the tables it builds
//! with which SQL, and its deliverables.

use lake_runtime::{Sql, sql};
use lake_schema::{
    DEEZER, EVENTSIM, GOLD_DEEZER_CHART_DAYS, GOLD_DEEZER_COUNTRY_TOP50, GOLD_DEEZER_USER_TOP50,
    GOLD_EVENTSIM_ACTIVITY_DAILY, GOLD_EVENTSIM_ACTIVITY_HOURLY, GOLD_EVENTSIM_DAILY_ACTIVE_USERS,
    GOLD_EVENTSIM_DIM_ARTISTS, GOLD_EVENTSIM_DIM_LOCATION, GOLD_EVENTSIM_DIM_SONGS,
    GOLD_EVENTSIM_DIM_USERS, GOLD_EVENTSIM_FACT_STREAMS, GOLD_EVENTSIM_SESSIONS,
    GOLD_EVENTSIM_STREAMS_BY_STATE, GOLD_EVENTSIM_TOP_ARTISTS_DAILY, GOLD_EVENTSIM_TOP_SESSIONS,
    GOLD_EVENTSIM_TOP_SONGS, GOLD_EVENTSIM_TOP_SONGS_DAILY, GOLD_LASTFM_COUNTRY_TOP50,
    GOLD_LASTFM_SESSIONS, GOLD_LASTFM_TOP_SESSIONS, GOLD_LASTFM_TOP_SONGS,
    GOLD_SPARKIFY_CONVERSIONS_DAILY, GOLD_SPARKIFY_DAILY_ACTIVE_USERS, GOLD_SPARKIFY_PLAYS_BY_HOUR,
    GOLD_SPARKIFY_SESSIONS, GOLD_SPARKIFY_TOP_ARTISTS_DAILY, GOLD_SPARKIFY_TOP_SESSIONS,
    GOLD_SPARKIFY_TOP_SONGS, GOLD_SPARKIFY_TOP_SONGS_DAILY, LASTFM, META_LANDED_OBJECTS,
    SILVER_DEEZER_COUNTRY_SONG_DAILY, SILVER_DEEZER_USER_SONG_DAILY, SILVER_EVENTSIM_AUTH_EVENTS,
    SILVER_EVENTSIM_LISTEN_EVENTS, SILVER_EVENTSIM_PAGE_VIEW_EVENTS,
    SILVER_EVENTSIM_STATUS_CHANGE_EVENTS, SILVER_LASTFM_LISTENS, SILVER_LASTFM_USERS,
    SILVER_SPARKIFY_SONGPLAYS, SILVER_SPARKIFY_USERS_HISTORY, SPARKIFY, TableDef,
};

/// A source the gold SQL runs over.
pub struct Source {
    pub name: &'static str,
    /// The tables its queries read (silver, and meta where a source needs it).
    pub inputs: &'static [&'static TableDef],
    /// Listening sessions over its plays, when its plays have times.
    pub sessions: Option<Sessions>,
    /// Tables only this source has, each with its query.
    pub extra: &'static [(&'static TableDef, Sql)],
    /// Top-50 charts of a 7-day window.
    pub charts: Option<Charts>,
}

/// The session tables: `plays` (`sql/plays/<source>.sql`: user_id, played_at, artist_name,
/// track_name) runs through `sessions.sql`, `top_sessions.sql` and `top_songs.sql`, the same
/// for every source; the top songs are delivered as `<lake>/gold/<source>/top_songs.tsv`.
pub struct Sessions {
    pub plays: Sql,
    /// The silver table `plays` reads, partitioned by the month of `played_at`: a run after a
    /// delivery rebuilds the sessions from the first month it changed there (see
    /// [`crate::sessions`]), and a change of the source's other inputs leaves them alone.
    pub plays_from: &'static TableDef,
    pub sessions: &'static TableDef,
    pub top_sessions: &'static TableDef,
    pub top_songs: &'static TableDef,
}

/// Charts of the 50 songs with most streams per key (a country, a user) over the 7 days that
/// end on a chart date: `sql/charts/top50.sql`, the same for every source, over each chart's
/// window of streams.
pub struct Charts {
    /// Which days get a chart, and when one is charted again.
    pub dates: ChartDates,
    pub tables: &'static [Chart],
}

/// The days a source is charted on.
pub enum ChartDates {
    /// Every day with a log: `days` gives each log day with the newest bronze batch of its logs
    /// (`day`, `batch`). A day is charted again when a log of its window is newer than those it
    /// was charted from, so that a new day costs one chart and a late file redoes the days whose
    /// window holds it. `log` records what each chart date saw.
    Logs { days: Sql, log: &'static TableDef },
    /// Every week, dated by its Sunday: `weeks` gives those with plays from `$first_day` to
    /// `$last_day` (`chart_date`; a NULL bound is none). A run over all changes charts the
    /// weeks of the months its inputs changed in (all of them when it cannot tell).
    Weeks { weeks: Sql },
}

/// How the windows of a run's chart dates are queried.
#[derive(Debug, Clone, Copy)]
pub enum Spans {
    /// Each date's window on its own: daily windows overlap.
    EachDate,
    /// One query over all of them: weekly windows do not overlap.
    AllAtOnce,
}

impl ChartDates {
    pub fn spans(&self) -> Spans {
        match self {
            ChartDates::Logs { .. } => Spans::EachDate,
            ChartDates::Weeks { .. } => Spans::AllAtOnce,
        }
    }
}

/// A chart table: its window query gives the streams of the chart dates' windows between the
/// bound `$first_day` and `$last_day` (`chart_date`, `key`, `song`, `streams`, maybe one row per
/// day); `key` and `song` become the table's columns of those names here.
pub struct Chart {
    pub def: &'static TableDef,
    pub window: Sql,
    pub key: &'static str,
    pub song: &'static str,
    /// The text file of each chart date, `<lake>/gold/<source>/charts/<file>_YYYYMMDD.txt`: one
    /// line per key in ascending order, `key|song:streams,…` in rank order.
    pub file: Option<&'static str>,
    /// How the 50 songs of each key are picked from its counts.
    pub pick: Pick,
}

/// How a chart picks each key's 50 songs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// A heap of 50 rows per key and chart date fed by every count (DataFusion's
    /// `PartitionedTopKExec`): no sort of the counts. The heaps cannot spill, so only for
    /// charts whose query ranks few keys: a day's countries (249 codes at most).
    Bounded,
    /// A sort of every count by key and streams, which spills beyond the memory limit: for
    /// the charts of users (their heaps outgrew the 1 GiB of query memory at 200,000 users
    /// charted on 8 dates: "Resources exhausted … PartitionedTopK") and for Last.fm's weekly
    /// country charts, which rank every week at once (525 MB of heaps at 1×, then the same).
    Sorted,
}

pub const SOURCES: &[Source] = &[
    Source {
        name: LASTFM,
        inputs: &[&SILVER_LASTFM_LISTENS, &SILVER_LASTFM_USERS],
        sessions: Some(Sessions {
            plays: sql!("plays/lastfm"),
            plays_from: &SILVER_LASTFM_LISTENS,
            sessions: &GOLD_LASTFM_SESSIONS,
            top_sessions: &GOLD_LASTFM_TOP_SESSIONS,
            top_songs: &GOLD_LASTFM_TOP_SONGS,
        }),
        extra: &[],
        charts: Some(Charts {
            dates: ChartDates::Weeks {
                weeks: sql!("charts/lastfm_weeks"),
            },
            tables: &[Chart {
                def: &GOLD_LASTFM_COUNTRY_TOP50,
                window: sql!("charts/lastfm_country"),
                key: "country",
                song: "song",
                file: None,
                pick: Pick::Sorted,
            }],
        }),
    },
    Source {
        name: SPARKIFY,
        inputs: &[&SILVER_SPARKIFY_SONGPLAYS, &SILVER_SPARKIFY_USERS_HISTORY],
        sessions: Some(Sessions {
            plays: sql!("plays/sparkify"),
            plays_from: &SILVER_SPARKIFY_SONGPLAYS,
            sessions: &GOLD_SPARKIFY_SESSIONS,
            top_sessions: &GOLD_SPARKIFY_TOP_SESSIONS,
            top_songs: &GOLD_SPARKIFY_TOP_SONGS,
        }),
        extra: &[
            (&GOLD_SPARKIFY_PLAYS_BY_HOUR, sql!("daily/plays_by_hour")),
            (
                &GOLD_SPARKIFY_DAILY_ACTIVE_USERS,
                sql!("daily/daily_active_users"),
            ),
            (
                &GOLD_SPARKIFY_TOP_SONGS_DAILY,
                sql!("daily/top_songs_daily"),
            ),
            (
                &GOLD_SPARKIFY_TOP_ARTISTS_DAILY,
                sql!("daily/top_artists_daily"),
            ),
            (
                &GOLD_SPARKIFY_CONVERSIONS_DAILY,
                sql!("sparkify/conversions_daily"),
            ),
        ],
        charts: None,
    },
    Source {
        name: DEEZER,
        inputs: &[
            &SILVER_DEEZER_COUNTRY_SONG_DAILY,
            &SILVER_DEEZER_USER_SONG_DAILY,
            &META_LANDED_OBJECTS,
        ],
        sessions: None,
        extra: &[],
        charts: Some(Charts {
            dates: ChartDates::Logs {
                days: sql!("charts/deezer_days"),
                log: &GOLD_DEEZER_CHART_DAYS,
            },
            tables: &[
                Chart {
                    def: &GOLD_DEEZER_COUNTRY_TOP50,
                    window: sql!("charts/deezer_country"),
                    key: "country",
                    song: "sng_id",
                    file: Some("country_top50"),
                    pick: Pick::Bounded,
                },
                Chart {
                    def: &GOLD_DEEZER_USER_TOP50,
                    window: sql!("charts/deezer_user"),
                    key: "user_id",
                    song: "sng_id",
                    file: Some("user_top50"),
                    pick: Pick::Sorted,
                },
            ],
        }),
    },
    Source {
        name: EVENTSIM,
        inputs: &[
            &SILVER_EVENTSIM_LISTEN_EVENTS,
            &SILVER_EVENTSIM_PAGE_VIEW_EVENTS,
            &SILVER_EVENTSIM_AUTH_EVENTS,
            &SILVER_EVENTSIM_STATUS_CHANGE_EVENTS,
        ],
        sessions: Some(Sessions {
            plays: sql!("plays/eventsim"),
            plays_from: &SILVER_EVENTSIM_LISTEN_EVENTS,
            sessions: &GOLD_EVENTSIM_SESSIONS,
            top_sessions: &GOLD_EVENTSIM_TOP_SESSIONS,
            top_songs: &GOLD_EVENTSIM_TOP_SONGS,
        }),
        extra: &[
            (&GOLD_EVENTSIM_DIM_USERS, sql!("eventsim/dim_users")),
            (&GOLD_EVENTSIM_DIM_SONGS, sql!("eventsim/dim_songs")),
            (&GOLD_EVENTSIM_DIM_ARTISTS, sql!("eventsim/dim_artists")),
            (&GOLD_EVENTSIM_DIM_LOCATION, sql!("eventsim/dim_location")),
            (&GOLD_EVENTSIM_FACT_STREAMS, sql!("eventsim/fact_streams")),
            (
                &GOLD_EVENTSIM_ACTIVITY_DAILY,
                sql!("eventsim/activity_daily"),
            ),
            (
                &GOLD_EVENTSIM_ACTIVITY_HOURLY,
                sql!("eventsim/activity_hourly"),
            ),
            (
                &GOLD_EVENTSIM_STREAMS_BY_STATE,
                sql!("eventsim/streams_by_state"),
            ),
            (
                &GOLD_EVENTSIM_DAILY_ACTIVE_USERS,
                sql!("daily/daily_active_users"),
            ),
            (
                &GOLD_EVENTSIM_TOP_SONGS_DAILY,
                sql!("daily/top_songs_daily"),
            ),
            (
                &GOLD_EVENTSIM_TOP_ARTISTS_DAILY,
                sql!("daily/top_artists_daily"),
            ),
        ],
        charts: None,
    },
];
