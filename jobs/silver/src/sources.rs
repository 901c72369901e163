//! The sources silver conforms, declared: their rules are the SQL files in `sql/`.

use lake_runtime::sql;
use lake_schema::{
    BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES, BRONZE_SPARKIFY_EVENTS, BRONZE_SPARKIFY_SONGS,
    LASTFM, SILVER_LASTFM_LISTENS, SILVER_LASTFM_QUARANTINE, SILVER_LASTFM_USERS,
    SILVER_SPARKIFY_ARTISTS, SILVER_SPARKIFY_QUARANTINE, SILVER_SPARKIFY_SONGPLAYS,
    SILVER_SPARKIFY_SONGS, SILVER_SPARKIFY_TIME, SILVER_SPARKIFY_USERS,
    SILVER_SPARKIFY_USERS_HISTORY, SPARKIFY,
};

use crate::source::{Checked, Kind, Source, Table, Time};

pub const SOURCES: &[&Source] = &[&LASTFM_SOURCE, &SPARKIFY_SOURCE];

const LASTFM_PLAYS: Checked = Checked {
    sql: sql!("lastfm_plays_checked"),
    time: Some(Time {
        text: "raw_timestamp",
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
    bronze: &[&BRONZE_LASTFM_PLAYS, &BRONZE_LASTFM_PROFILES],
    checked: &[&LASTFM_PLAYS, &LASTFM_PROFILES],
    tables: &[
        Table::new(
            &SILVER_LASTFM_LISTENS,
            sql!("lastfm_listens"),
            Kind::Monthly {
                new_rows: &LASTFM_PLAYS,
            },
        )
        .holding(&[sql!("lastfm_repeated_keys")])
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
    bronze: &[&BRONZE_SPARKIFY_SONGS, &BRONZE_SPARKIFY_EVENTS],
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

#[cfg(test)]
mod tests {
    use super::*;

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
                if table.kind.is_monthly() {
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
            for bronze in source.bronze {
                assert_eq!(bronze.source, Some(source.name));
            }
        }
    }
}
