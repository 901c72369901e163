//! The sources silver conforms, declared: their rules are the SQL files in `sql/`.

use lake_runtime::sql;
use lake_schema::{
    BRONZE_DEEZER_LISTENS, BRONZE_EVENTSIM_AUTH_EVENTS, BRONZE_EVENTSIM_LISTEN_EVENTS,
    BRONZE_EVENTSIM_PAGE_VIEW_EVENTS, BRONZE_EVENTSIM_STATUS_CHANGE_EVENTS, BRONZE_LASTFM_PLAYS,
    BRONZE_LASTFM_PROFILES, BRONZE_SPARKIFY_EVENTS, BRONZE_SPARKIFY_SONGS, DEEZER, EVENTSIM,
    LASTFM, META_LANDED_OBJECTS, SILVER_DEEZER_COUNTRY_SONG_DAILY, SILVER_DEEZER_QUARANTINE,
    SILVER_DEEZER_STREAMS, SILVER_DEEZER_USER_SONG_DAILY, SILVER_EVENTSIM_AUTH_EVENTS,
    SILVER_EVENTSIM_LISTEN_EVENTS, SILVER_EVENTSIM_PAGE_VIEW_EVENTS, SILVER_EVENTSIM_QUARANTINE,
    SILVER_EVENTSIM_STATUS_CHANGE_EVENTS, SILVER_LASTFM_LISTENS, SILVER_LASTFM_QUARANTINE,
    SILVER_LASTFM_USERS, SILVER_SPARKIFY_ARTISTS, SILVER_SPARKIFY_QUARANTINE,
    SILVER_SPARKIFY_SONGPLAYS, SILVER_SPARKIFY_SONGS, SILVER_SPARKIFY_TIME, SILVER_SPARKIFY_USERS,
    SILVER_SPARKIFY_USERS_HISTORY, SPARKIFY,
};

use crate::source::{Checked, Kind, Source, Table, Time};

pub const SOURCES: &[&Source] = &[
    &LASTFM_SOURCE,
    &SPARKIFY_SOURCE,
    &DEEZER_SOURCE,
    &EVENTSIM_SOURCE,
];

const LASTFM_PLAYS: Checked = Checked {
    sql: sql!("lastfm_plays_checked"),
    time: Some(Time {
        text: Some("raw_timestamp"),
        typed: "played_at",
    }),
    cached: false,
};

const LASTFM_PROFILES: Checked = Checked {
    sql: sql!("lastfm_profiles_checked"),
    time: None,
    cached: false,
};

/// Last.fm 1K: listens by month (new plays replace the months they fall in), users from the
/// profiles, and the rejects of both.
pub const LASTFM_SOURCE: Source = Source {
    name: LASTFM,
    inputs: &[&BRONZE_LASTFM_PLAYS, &BRONZE_LASTFM_PROFILES],
    shared: &[],
    checked: &[&LASTFM_PLAYS, &LASTFM_PROFILES],
    tables: &[
        Table::new(
            &SILVER_LASTFM_LISTENS,
            sql!("lastfm_listens"),
            Kind::Monthly {
                new_rows: &LASTFM_PLAYS,
            },
        )
        .once_per(
            &["user_id", "played_at", "artist_name", "track_name"],
            // by object and line, so that how the files were delivered changes nothing; by
            // batch last, for an object landed again
            &["source_object", "source_line", "batch"],
        )
        .reconciled(&LASTFM_PLAYS, "duplicates"),
        Table::new(&SILVER_LASTFM_USERS, sql!("lastfm_users"), Kind::Whole)
            .reconciled(&LASTFM_PROFILES, "duplicates"),
        Table::new(
            &SILVER_LASTFM_QUARANTINE,
            sql!("lastfm_quarantine"),
            Kind::Rejects,
        ),
    ],
    measures: &[],
};

const SPARKIFY_SONGS: Checked = Checked {
    sql: sql!("sparkify_songs_checked"),
    time: None,
    cached: true,
};

const SPARKIFY_EVENTS: Checked = Checked {
    sql: sql!("sparkify_events_checked"),
    time: None,
    cached: true,
};

/// Sparkify: the star schema of the Udacity course (song plays, users with their history,
/// songs, artists, time) and the rejects of songs and events.
pub const SPARKIFY_SOURCE: Source = Source {
    name: SPARKIFY,
    inputs: &[&BRONZE_SPARKIFY_SONGS, &BRONZE_SPARKIFY_EVENTS],
    shared: &[],
    checked: &[&SPARKIFY_SONGS, &SPARKIFY_EVENTS],
    tables: &[
        Table::new(&SILVER_SPARKIFY_SONGS, sql!("sparkify_songs"), Kind::Whole)
            .reconciled(&SPARKIFY_SONGS, "duplicates"),
        Table::new(
            &SILVER_SPARKIFY_ARTISTS,
            sql!("sparkify_artists"),
            Kind::Whole,
        ),
        Table::new(
            &SILVER_SPARKIFY_SONGPLAYS,
            sql!("sparkify_songplays"),
            Kind::MonthlyRebuilt,
        )
        .reconciled(&SPARKIFY_EVENTS, "other_pages"),
        Table::new(
            &SILVER_SPARKIFY_TIME,
            sql!("sparkify_time"),
            Kind::MonthlyRebuilt,
        ),
        Table::new(&SILVER_SPARKIFY_USERS, sql!("sparkify_users"), Kind::Whole),
        Table::new(
            &SILVER_SPARKIFY_USERS_HISTORY,
            sql!("sparkify_users_history"),
            Kind::Whole,
        ),
        Table::new(
            &SILVER_SPARKIFY_QUARANTINE,
            sql!("sparkify_quarantine"),
            Kind::Rejects,
        ),
    ],
    measures: &[sql!("sparkify_measures")],
};

const DEEZER_LISTENS: Checked = Checked {
    sql: sql!("deezer_listens_checked"),
    time: Some(Time {
        text: Some("day"),
        typed: "listen_date",
    }),
    cached: false,
};

/// Deezer's daily logs: the streams, and the two daily aggregates the charts roll their window
/// from. A new day's log replaces that day in each; nothing else is read or written.
pub const DEEZER_SOURCE: Source = Source {
    name: DEEZER,
    inputs: &[&BRONZE_DEEZER_LISTENS, &META_LANDED_OBJECTS],
    shared: &[],
    checked: &[&DEEZER_LISTENS],
    tables: &[
        Table::new(
            &SILVER_DEEZER_STREAMS,
            sql!("deezer_streams"),
            Kind::Daily {
                new_rows: &DEEZER_LISTENS,
                column: "listen_date",
            },
        )
        .reconciled(&DEEZER_LISTENS, "unaccounted"),
        Table::new(
            &SILVER_DEEZER_COUNTRY_SONG_DAILY,
            sql!("deezer_country_song_daily"),
            Kind::Daily {
                new_rows: &DEEZER_LISTENS,
                column: "day",
            },
        ),
        Table::new(
            &SILVER_DEEZER_USER_SONG_DAILY,
            sql!("deezer_user_song_daily"),
            Kind::Daily {
                new_rows: &DEEZER_LISTENS,
                column: "day",
            },
        ),
        Table::new(
            &SILVER_DEEZER_QUARANTINE,
            sql!("deezer_quarantine"),
            Kind::Rejects,
        ),
    ],
    measures: &[],
};

/// An eventsim stream's checked view: the time is the JSON `ts`, inside the record.
const fn eventsim_stream(sql: lake_runtime::Sql) -> Checked {
    Checked {
        sql,
        time: Some(Time {
            text: None,
            typed: "event_time",
        }),
        cached: false,
    }
}

const EVENTSIM_LISTENS: Checked = eventsim_stream(sql!("eventsim_listen_events_checked"));
const EVENTSIM_PAGE_VIEWS: Checked = eventsim_stream(sql!("eventsim_page_view_events_checked"));
const EVENTSIM_AUTHS: Checked = eventsim_stream(sql!("eventsim_auth_events_checked"));
const EVENTSIM_STATUS_CHANGES: Checked =
    eventsim_stream(sql!("eventsim_status_change_events_checked"));

/// A table of one eventsim stream: the months of new events are rebuilt (an event delivered
/// again is counted once, the first landed copy kept), and its counts reconcile with its bronze stream.
const fn eventsim_table(
    def: &'static lake_schema::TableDef,
    sql: lake_runtime::Sql,
    checked: &'static Checked,
) -> Table {
    Table::new(def, sql, Kind::Monthly { new_rows: checked })
        .once_per(
            &["ts", "session_id", "item_in_session"],
            &["batch", "source_object", "source_line"],
        )
        .reconciled(checked, "duplicates")
}

/// eventsim's four streams, typed, each event once, by month; the rejects of all four.
pub const EVENTSIM_SOURCE: Source = Source {
    name: EVENTSIM,
    inputs: &[
        &BRONZE_EVENTSIM_LISTEN_EVENTS,
        &BRONZE_EVENTSIM_PAGE_VIEW_EVENTS,
        &BRONZE_EVENTSIM_AUTH_EVENTS,
        &BRONZE_EVENTSIM_STATUS_CHANGE_EVENTS,
    ],
    // the four streams' events together, checked by one set of rules; each stream's view
    // picks its own from it
    shared: &[sql!("eventsim_events_checked")],
    checked: &[
        &EVENTSIM_LISTENS,
        &EVENTSIM_PAGE_VIEWS,
        &EVENTSIM_AUTHS,
        &EVENTSIM_STATUS_CHANGES,
    ],
    tables: &[
        eventsim_table(
            &SILVER_EVENTSIM_LISTEN_EVENTS,
            sql!("eventsim_listen_events"),
            &EVENTSIM_LISTENS,
        ),
        eventsim_table(
            &SILVER_EVENTSIM_PAGE_VIEW_EVENTS,
            sql!("eventsim_page_view_events"),
            &EVENTSIM_PAGE_VIEWS,
        ),
        eventsim_table(
            &SILVER_EVENTSIM_AUTH_EVENTS,
            sql!("eventsim_auth_events"),
            &EVENTSIM_AUTHS,
        ),
        eventsim_table(
            &SILVER_EVENTSIM_STATUS_CHANGE_EVENTS,
            sql!("eventsim_status_change_events"),
            &EVENTSIM_STATUS_CHANGES,
        ),
        Table::new(
            &SILVER_EVENTSIM_QUARANTINE,
            sql!("eventsim_quarantine"),
            Kind::Rejects,
        ),
    ],
    measures: &[],
};

#[cfg(test)]
mod tests {
    use super::*;
    use lake_schema::Layer;

    #[test]
    fn every_declaration_is_complete() {
        for source in SOURCES {
            let rejects = source
                .tables
                .iter()
                .filter(|t| matches!(t.kind, Kind::Rejects))
                .count();
            assert_eq!(rejects, 1, "{}: one quarantine", source.name);
            for table in source.tables {
                let name = table.def.qualified_name();
                assert_eq!(table.def.source, Some(source.name), "{name}");
                if let Kind::Monthly { new_rows } = table.kind {
                    assert!(new_rows.time.is_some(), "{name}: new rows need a time");
                }
                if let Kind::Daily { new_rows, column } = table.kind {
                    assert!(new_rows.time.is_some(), "{name}: new rows need a time");
                    assert!(table.def.column(column).is_some(), "{name}: no {column}");
                }
                if table.kind.is_dated() {
                    assert_eq!(table.def.partition_by, ["year", "month"], "{name}");
                }
                if let Some(r) = table.reconcile {
                    assert!(
                        source
                            .checked
                            .iter()
                            .any(|c| c.sql.name == r.input.sql.name),
                        "{name}: reconciled with a view of its source"
                    );
                }
            }
            for input in source.inputs.iter().filter(|d| d.layer == Layer::Bronze) {
                assert_eq!(input.source, Some(source.name));
            }
        }
    }
}
