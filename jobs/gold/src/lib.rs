//! The gold job: the SQL in `sql/` over silver, one definition for every source.
//!
//! Each source maps its silver table onto the view `plays` (`sql/plays/<source>.sql`:
//! user_id, played_at, artist_name, track_name). `sessions.sql`, `top_sessions.sql` and
//! `top_songs.sql` then run unchanged for every source, each result replacing its gold table
//! in one commit, and the top songs are delivered as `<lake>/gold/<source>/top_songs.tsv`.
//! A source may add tables of its own (`sql/<source>/*.sql`, e.g. Sparkify's listening
//! analytics). A source whose silver tables do not exist yet is skipped.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{DataFrame, SessionContext};
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    Input, LakeError, Result, Run, Scope, Summary, WriteMode, days_predicate, int64_column,
    session, text_column,
};
use lake_schema::{
    GOLD_LASTFM_SESSIONS, GOLD_LASTFM_TOP_SESSIONS, GOLD_LASTFM_TOP_SONGS,
    GOLD_SPARKIFY_CONVERSIONS_DAILY, GOLD_SPARKIFY_DAILY_ACTIVE_USERS, GOLD_SPARKIFY_PLAYS_BY_HOUR,
    GOLD_SPARKIFY_SESSIONS, GOLD_SPARKIFY_TOP_ARTISTS_DAILY, GOLD_SPARKIFY_TOP_SESSIONS,
    GOLD_SPARKIFY_TOP_SONGS, GOLD_SPARKIFY_TOP_SONGS_DAILY, LASTFM, SILVER_LASTFM_LISTENS,
    SILVER_SPARKIFY_SONGPLAYS, SILVER_SPARKIFY_USERS_HISTORY, SPARKIFY, TableDef,
};
use serde_json::json;

/// A named SQL file of this job.
pub struct Sql {
    pub name: &'static str,
    pub text: &'static str,
}

macro_rules! sql {
    ($name:literal) => {
        Sql {
            name: concat!("jobs/gold/sql/", $name, ".sql"),
            text: include_str!(concat!("../sql/", $name, ".sql")),
        }
    };
}

pub const SESSIONS: Sql = sql!("sessions");
pub const TOP_SESSIONS: Sql = sql!("top_sessions");
pub const TOP_SONGS: Sql = sql!("top_songs");

/// A source the gold SQL runs over.
pub struct Source {
    pub name: &'static str,
    /// Silver tables the source's queries read.
    pub inputs: &'static [&'static TableDef],
    pub plays: Sql,
    pub sessions: &'static TableDef,
    pub top_sessions: &'static TableDef,
    pub top_songs: &'static TableDef,
    /// Tables only this source has, each with its query.
    pub extra: &'static [(&'static TableDef, Sql)],
}

pub const SOURCES: &[Source] = &[
    Source {
        name: LASTFM,
        inputs: &[&SILVER_LASTFM_LISTENS],
        plays: sql!("plays/lastfm"),
        sessions: &GOLD_LASTFM_SESSIONS,
        top_sessions: &GOLD_LASTFM_TOP_SESSIONS,
        top_songs: &GOLD_LASTFM_TOP_SONGS,
        extra: &[],
    },
    Source {
        name: SPARKIFY,
        inputs: &[&SILVER_SPARKIFY_SONGPLAYS, &SILVER_SPARKIFY_USERS_HISTORY],
        plays: sql!("plays/sparkify"),
        sessions: &GOLD_SPARKIFY_SESSIONS,
        top_sessions: &GOLD_SPARKIFY_TOP_SESSIONS,
        top_songs: &GOLD_SPARKIFY_TOP_SONGS,
        extra: &[
            (&GOLD_SPARKIFY_PLAYS_BY_HOUR, sql!("sparkify/plays_by_hour")),
            (
                &GOLD_SPARKIFY_DAILY_ACTIVE_USERS,
                sql!("sparkify/daily_active_users"),
            ),
            (
                &GOLD_SPARKIFY_TOP_SONGS_DAILY,
                sql!("sparkify/top_songs_daily"),
            ),
            (
                &GOLD_SPARKIFY_TOP_ARTISTS_DAILY,
                sql!("sparkify/top_artists_daily"),
            ),
            (
                &GOLD_SPARKIFY_CONVERSIONS_DAILY,
                sql!("sparkify/conversions_daily"),
            ),
        ],
    },
];

pub const TOP_SONGS_FILE: &str = "top_songs.tsv";

async fn query(ctx: &SessionContext, sql: &Sql) -> Result<DataFrame> {
    ctx.sql(sql.text).await.map_err(LakeError::query(sql.name))
}

/// Registers `df` as the view `name` for the queries that follow.
fn view(ctx: &SessionContext, name: &str, df: DataFrame) -> Result<()> {
    ctx.deregister_table(name).map_err(LakeError::query(name))?;
    ctx.register_table(name, df.into_view())
        .map_err(LakeError::query(name))?;
    Ok(())
}

/// The Delta application id prefix under which each gold table records the version of each
/// silver table it was computed from (`lake.gold:silver.lastfm_listens`).
pub const GOLD_TXN: &str = "lake.gold";

pub async fn run(run: Arc<Run>, scope: Scope, out: Option<PathBuf>) -> Result<Summary> {
    let mut summary = Summary::default();
    summary.detail("scope", format!("{scope:?}"));
    for source in SOURCES {
        run_source(&run, source, scope, out.as_ref(), &mut summary).await?;
    }
    Ok(summary)
}

/// What a run does to one gold table.
enum Refresh {
    /// It was computed from the silver versions there are now.
    UpToDate,
    /// A backfill does not touch it (it has no `day` column).
    NotInScope,
    /// Recompute it from all of silver: sessions are numbered over each user's whole history
    /// and rankings span every session, so a change anywhere can change any row.
    Full,
    /// Replace the rows of these days (a SQL predicate on `day`).
    Days(String),
}

impl Refresh {
    fn describe(&self) -> String {
        match self {
            Refresh::UpToDate => "up to date: silver has not changed since it was computed".into(),
            Refresh::NotInScope => "not in the backfill: it has no day column".into(),
            Refresh::Full => {
                "recomputed in full: sessions and rankings span every play of silver".into()
            }
            Refresh::Days(p) => format!("days replaced: {p}"),
        }
    }
}

async fn refresh(
    run: &Run,
    def: &TableDef,
    scope: Scope,
    inputs: &[(String, i64)],
) -> Result<Refresh> {
    Ok(match scope {
        Scope::Full => Refresh::Full,
        Scope::Range(from, to) if def.column("day").is_some() => {
            Refresh::Days(days_predicate("day", from, to))
        }
        Scope::Range(..) => Refresh::NotInScope,
        Scope::Changed => {
            for (app, version) in inputs {
                if run.lake.txn_version(def, app).await? != Some(*version) {
                    return Ok(Refresh::Full);
                }
            }
            Refresh::UpToDate
        }
    })
}

async fn run_source(
    run: &Run,
    source: &Source,
    scope: Scope,
    out: Option<&PathBuf>,
    summary: &mut Summary,
) -> Result<()> {
    let ctx = session(&run.cfg);
    let lake = &run.lake;
    let mut versions = Vec::new();
    for def in source.inputs {
        versions.push((def.qualified_name(), lake.register(&ctx, def).await?));
    }
    if versions.iter().all(|(_, v)| v.is_none()) {
        tracing::info!(
            "no silver tables of {} yet: skipping this source",
            source.name
        );
        return Ok(());
    }
    // the transactions a table computed from these silver versions records
    let inputs: Vec<(String, i64)> = versions
        .iter()
        .map(|(name, v)| (format!("{GOLD_TXN}:{name}"), v.map_or(-1, |v| v as i64)))
        .collect();
    summary.inputs.extend(
        versions
            .into_iter()
            .map(|(name, version)| Input { name, version }),
    );
    view(&ctx, "plays", query(&ctx, &source.plays).await?)?;

    let mut written = Vec::new();
    let progress = Progress::new(
        &format!("gold {}", source.name),
        3 + source.extra.len() as u64,
        Unit::Steps,
    );
    let mut write = async |sql: &Sql, def: &TableDef| -> Result<()> {
        progress.inc(1);
        let name = def.qualified_name();
        let refresh = refresh(run, def, scope, &inputs).await?;
        tracing::info!(table = %name, "{}", refresh.describe());
        summary
            .details
            .insert(format!("{name} refresh"), json!(refresh.describe()));
        let mut df = query(&ctx, sql).await?;
        let mut commit = run.commit();
        let mode = match refresh {
            Refresh::UpToDate | Refresh::NotInScope => return Ok(()),
            Refresh::Full => {
                for (app, version) in &inputs {
                    commit = commit.txn(app, *version);
                }
                WriteMode::Overwrite
            }
            Refresh::Days(predicate) => {
                let err = LakeError::query(sql.name);
                let expr = df.parse_sql_expr(&predicate).map_err(&err)?;
                df = df.filter(expr).map_err(err)?;
                WriteMode::Replace(predicate)
            }
        };
        written.push(lake.write(&ctx, def, df, mode, &commit).await?);
        Ok(())
    };
    // each step reads the table the one before committed, so the answer matches the tables
    for (sql, def, next_view) in [
        (&SESSIONS, source.sessions, "sessions"),
        (&TOP_SESSIONS, source.top_sessions, "top_sessions"),
        (&TOP_SONGS, source.top_songs, "top_songs"),
    ] {
        write(sql, def).await?;
        lake.register(&ctx, def).await?;
        let table = ctx
            .table(def.qualified_name())
            .await
            .map_err(LakeError::query(def.qualified_name()))?;
        view(&ctx, next_view, table)?;
    }
    for (def, sql) in source.extra {
        write(sql, def).await?;
    }
    progress.finish();
    if !written.is_empty() {
        let plays = ctx
            .table("plays")
            .await
            .map(|df| df.count())
            .map_err(LakeError::query("plays"))?
            .await
            .map_err(LakeError::query("plays"))?;
        summary.rows_in += plays as u64;
    }
    summary.rows_out += written.iter().map(|w| w.rows).sum::<u64>();
    summary.outputs.extend(written);

    let batches = ctx
        .sql("SELECT track_name, artist_name, play_count FROM top_songs ORDER BY rank")
        .await
        .map_err(LakeError::query(source.top_songs.qualified_name()))?
        .collect()
        .await
        .map_err(LakeError::query(source.top_songs.qualified_name()))?;
    let tsv = top_songs_tsv(&batches).map_err(|e| LakeError::query(TOP_SONGS.name)(e.into()))?;
    let folder = lake.root().child(&format!("gold/{}", source.name))?;
    let url = folder
        .put_file(TOP_SONGS_FILE, Bytes::from(tsv.clone()))
        .await?;
    tracing::info!("top songs of {} written to {url}", source.name);
    let mut answers = vec![url];
    if let Some(path) = out {
        std::fs::write(path, &tsv).map_err(|e| LakeError::Io {
            location: path.display().to_string(),
            message: format!("cannot write the top-songs TSV: {e}"),
        })?;
        tracing::info!("top songs of {} written to {}", source.name, path.display());
        answers.push(path.display().to_string());
    }
    summary.detail(&format!("{}_top_songs", source.name), answers);
    Ok(())
}

/// The deliverable: header `track_name`, `artist_name`, `play_count`, one row per song.
/// Names never hold tabs or line breaks in Last.fm; should another source have them, they are
/// written as `\t`, `\n`, `\r` (and `\` as `\\`) so that the file stays one row per line.
pub fn top_songs_tsv(
    batches: &[RecordBatch],
) -> std::result::Result<String, datafusion::arrow::error::ArrowError> {
    let mut out = String::from("track_name\tartist_name\tplay_count\n");
    for b in batches {
        let (track, artist, count) = (text_column(b, 0)?, text_column(b, 1)?, int64_column(b, 2)?);
        for i in 0..b.num_rows() {
            let _ = writeln!(
                out,
                "{}\t{}\t{}",
                escape(track.value(i)),
                escape(artist.value(i)),
                count.value(i)
            );
        }
    }
    Ok(out)
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\t', '\n', '\r', '\\']) {
        return s.into();
    }
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_tabs_or_newlines_stay_on_one_row() {
        assert_eq!(escape("Plain \"Quoted\" Björk"), "Plain \"Quoted\" Björk");
        assert_eq!(escape("a\tb\nc\\d"), "a\\tb\\nc\\\\d");
    }

    /// The cases of `tests/cases.txt`, run through the gold SQL on in-memory tables.
    mod sql_cases {
        use std::sync::Arc;

        use datafusion::arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
        use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
        use datafusion::catalog::MemTable;
        use datafusion::prelude::SessionContext;

        use super::super::{SESSIONS, Sql, TOP_SESSIONS, TOP_SONGS};

        #[derive(Default, Debug)]
        struct Case {
            name: String,
            plays: Vec<Vec<String>>,
            sessions: Option<Vec<String>>,
            top_songs: Option<Vec<String>>,
        }

        fn cases() -> Vec<Case> {
            let mut cases: Vec<Case> = Vec::new();
            let mut section = String::new();
            for line in include_str!("../tests/cases.txt").lines() {
                if line.starts_with('#') || line.trim().is_empty() {
                    continue;
                }
                if let Some(name) = line.strip_prefix("case: ") {
                    cases.push(Case {
                        name: name.into(),
                        ..Default::default()
                    });
                } else if let Some(name) = line.strip_suffix(':') {
                    section = name.to_string();
                } else if let Some(case) = cases.last_mut() {
                    let row = line.to_string();
                    match section.as_str() {
                        "plays" => case.plays.push(row.split('\t').map(String::from).collect()),
                        "sessions" => case.sessions.get_or_insert_with(Vec::new).push(row),
                        "top_songs" => case.top_songs.get_or_insert_with(Vec::new).push(row),
                        other => panic!("unknown section {other}"),
                    }
                }
            }
            cases
        }

        fn plays(case: &Case) -> RecordBatch {
            let col = |i: usize| {
                Arc::new(StringArray::from_iter_values(
                    case.plays.iter().map(|p| p[i].clone()),
                ))
            };
            let at: TimestampMicrosecondArray = case
                .plays
                .iter()
                .map(|p| {
                    chrono::NaiveDateTime::parse_from_str(&p[1], "%Y-%m-%dT%H:%M:%SZ")
                        .map(|t| t.and_utc().timestamp_micros())
                        .ok()
                })
                .collect();
            let schema = lake_schema::SILVER_LASTFM_LISTENS.arrow_schema();
            let fields: Vec<_> = ["user_id", "played_at", "artist_name", "track_name"]
                .iter()
                .filter_map(|n| schema.field_with_name(n).ok().cloned())
                .collect();
            RecordBatch::try_new(
                Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
                vec![col(0), Arc::new(at.with_timezone("UTC")), col(2), col(3)],
            )
            .expect("plays batch")
        }

        /// Runs `sql` and registers its result as the table `name`; returns it as text rows.
        async fn step(ctx: &SessionContext, sql: &Sql, name: &str) -> Vec<String> {
            let df = ctx.sql(sql.text).await.expect(sql.name);
            let batches = df.collect().await.expect(sql.name);
            let options =
                FormatOptions::default().with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%SZ"));
            let mut rows = Vec::new();
            for b in &batches {
                let formatters: Vec<_> = b
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
                    .collect();
                for r in 0..b.num_rows() {
                    rows.push(
                        formatters
                            .iter()
                            .map(|f| f.value(r).to_string())
                            .collect::<Vec<_>>()
                            .join("\t"),
                    );
                }
            }
            let schema = batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
            let table = MemTable::try_new(schema, vec![batches]).expect("mem table");
            ctx.register_table(name, Arc::new(table)).expect("register");
            rows
        }

        #[tokio::test]
        async fn gold_sql_gives_the_rows_of_every_case() {
            let cases = cases();
            assert!(cases.len() >= 4, "cases.txt was not read");
            for case in cases {
                let ctx = SessionContext::new();
                ctx.register_batch("plays", plays(&case)).expect("plays");
                let mut sessions = step(&ctx, &SESSIONS, "sessions").await;
                let _ = step(&ctx, &TOP_SESSIONS, "top_sessions").await;
                let top_songs = step(&ctx, &TOP_SONGS, "top_songs").await;
                if let Some(mut expected) = case.sessions {
                    sessions.sort();
                    expected.sort();
                    assert_eq!(sessions, expected, "sessions: {}", case.name);
                }
                if let Some(expected) = case.top_songs {
                    // drop the rank column
                    let got: Vec<String> = top_songs
                        .iter()
                        .map(|r| {
                            r.split_once('\t')
                                .map_or(r.clone(), |(_, rest)| rest.to_string())
                        })
                        .collect();
                    assert_eq!(got, expected, "top songs: {}", case.name);
                }
            }
        }
    }
}
