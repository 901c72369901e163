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
use datafusion::prelude::{SessionContext, col};
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    Days, Input, LakeError, Refresh, Result, Run, Scope, Sql, Summary, Written, int64_column,
    register_view, session, sql, text_column,
};
use lake_schema::{
    GOLD_LASTFM_SESSIONS, GOLD_LASTFM_TOP_SESSIONS, GOLD_LASTFM_TOP_SONGS,
    GOLD_SPARKIFY_CONVERSIONS_DAILY, GOLD_SPARKIFY_DAILY_ACTIVE_USERS, GOLD_SPARKIFY_PLAYS_BY_HOUR,
    GOLD_SPARKIFY_SESSIONS, GOLD_SPARKIFY_TOP_ARTISTS_DAILY, GOLD_SPARKIFY_TOP_SESSIONS,
    GOLD_SPARKIFY_TOP_SONGS, GOLD_SPARKIFY_TOP_SONGS_DAILY, LASTFM, SILVER_LASTFM_LISTENS,
    SILVER_SPARKIFY_SONGPLAYS, SILVER_SPARKIFY_USERS_HISTORY, SPARKIFY, TableDef,
};

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

/// The Delta application id prefix under which each gold table records the version of each
/// silver table it was computed from (`lake.gold:silver.lastfm_listens`).
pub const GOLD_TXN: &str = "lake.gold";

pub async fn run(run: Arc<Run>, scope: Scope, out: Option<PathBuf>) -> Result<Summary> {
    let mut summary = Summary::default();
    summary.detail("scope", format!("{scope:?}"));
    for source in SOURCES {
        let Some(gold) = Gold::open(&run, source, scope, &mut summary).await? else {
            continue;
        };
        let written = gold.build(&mut summary).await?;
        if !written.is_empty() {
            summary.rows_in += gold.plays().await?;
        }
        summary.rows_out += written.iter().map(|w| w.rows).sum::<u64>();
        summary.outputs.extend(written);
        gold.deliver(out.as_ref(), &mut summary).await?;
    }
    Ok(summary)
}

/// One source's gold run.
struct Gold<'a> {
    run: &'a Run,
    source: &'a Source,
    scope: Scope,
    ctx: SessionContext,
    /// The transactions a table computed from the silver versions read records.
    txns: Vec<(String, i64)>,
}

impl<'a> Gold<'a> {
    /// Registers the source's silver tables and its `plays` view; `None` (with a message) when
    /// none of them exists yet.
    async fn open(
        run: &'a Run,
        source: &'a Source,
        scope: Scope,
        summary: &mut Summary,
    ) -> Result<Option<Gold<'a>>> {
        let ctx = session(&run.cfg);
        let inputs: Vec<Input> = run.lake.register_inputs(&ctx, source.inputs).await?;
        if inputs.iter().all(|i| i.version.is_none()) {
            tracing::info!("{} has no silver tables yet: skipping it", source.name);
            return Ok(None);
        }
        let txns = inputs
            .iter()
            .map(|i| {
                let version = i.version.map_or(-1, |v| v as i64);
                (format!("{GOLD_TXN}:{}", i.name), version)
            })
            .collect();
        summary.inputs.extend(inputs);
        register_view(&ctx, "plays", source.plays.plan(&ctx).await?)?;
        Ok(Some(Gold {
            run,
            source,
            scope,
            ctx,
            txns,
        }))
    }

    /// Builds the source's tables: sessions, top sessions and top songs in turn, each step
    /// reading the table the one before committed (so the answer matches the tables), then
    /// the source's own tables.
    async fn build(&self, summary: &mut Summary) -> Result<Vec<Written>> {
        let progress = Progress::new(
            &format!("gold {}", self.source.name),
            3 + self.source.extra.len() as u64,
            Unit::Steps,
        );
        let mut written = Vec::new();
        for (sql, def, next_view) in [
            (&SESSIONS, self.source.sessions, "sessions"),
            (&TOP_SESSIONS, self.source.top_sessions, "top_sessions"),
            (&TOP_SONGS, self.source.top_songs, "top_songs"),
        ] {
            written.extend(self.build_table(sql, def, summary).await?);
            progress.inc(1);
            self.run.lake.register(&self.ctx, def).await?;
            let table = self
                .ctx
                .table(def.qualified_name())
                .await
                .map_err(LakeError::query(def.qualified_name()))?;
            register_view(&self.ctx, next_view, table)?;
        }
        for (def, sql) in self.source.extra {
            written.extend(self.build_table(sql, def, summary).await?);
            progress.inc(1);
        }
        progress.finish();
        Ok(written)
    }

    /// What this run does to `def`: tables computed from other silver versions are recomputed
    /// in full (sessions are numbered over each user's whole history and rankings span every
    /// session, so a change anywhere can change any row); a backfill replaces days.
    async fn plan(&self, def: &TableDef) -> Result<Refresh> {
        Ok(match self.scope {
            Scope::Full => Refresh::Full,
            Scope::Range(from, to) if def.column("day").is_some() => Refresh::Days(Days(from, to)),
            Scope::Range(..) => Refresh::NotInScope,
            Scope::Changed => {
                for (app, version) in &self.txns {
                    if self.run.lake.txn_version(def, app).await? != Some(*version) {
                        return Ok(Refresh::Full);
                    }
                }
                Refresh::UpToDate
            }
        })
    }

    /// Plans and writes one table in one commit; `None` when it is left alone.
    async fn build_table(
        &self,
        sql: &Sql,
        def: &TableDef,
        summary: &mut Summary,
    ) -> Result<Option<Written>> {
        let name = def.qualified_name();
        let refresh = self.plan(def).await?;
        tracing::info!(table = %name, "{}", refresh.describe());
        summary.detail(&format!("{name} refresh"), refresh.describe());
        let Some(mode) = refresh.write_mode() else {
            return Ok(None);
        };
        let mut df = sql.plan(&self.ctx).await?;
        if let Some(rows) = refresh.replaced() {
            df = df.filter(rows).map_err(LakeError::query(sql.path))?;
        }
        let mut commit = self.run.commit();
        if refresh == Refresh::Full {
            for (app, version) in &self.txns {
                commit = commit.txn(app, *version);
            }
        }
        let written = self
            .run
            .lake
            .write(&self.ctx, def, df, mode, &commit)
            .await?;
        Ok(Some(written))
    }

    /// The plays the tables were computed from.
    async fn plays(&self) -> Result<u64> {
        let err = LakeError::query("plays");
        let plays = self.ctx.table("plays").await.map_err(&err)?;
        Ok(plays.count().await.map_err(err)? as u64)
    }

    /// Writes the top songs TSV into the lake (and to `out`, when given).
    async fn deliver(&self, out: Option<&PathBuf>, summary: &mut Summary) -> Result<()> {
        let context = self.source.top_songs.qualified_name();
        let batches = self
            .ctx
            .table("top_songs")
            .await
            .and_then(|df| df.sort(vec![col("rank").sort(true, false)]))
            .map_err(LakeError::query(&context))?
            .collect()
            .await
            .map_err(LakeError::query(&context))?;
        let tsv = top_songs_tsv(&batches).map_err(|e| LakeError::query(&context)(e.into()))?;
        let folder = self
            .run
            .lake
            .root()
            .child(&format!("gold/{}", self.source.name))?;
        let url = folder
            .put_file(TOP_SONGS_FILE, Bytes::from(tsv.clone()))
            .await?;
        tracing::info!("top songs of {} written to {url}", self.source.name);
        let mut answers = vec![url];
        if let Some(path) = out {
            std::fs::write(path, &tsv).map_err(|e| LakeError::Io {
                location: path.display().to_string(),
                message: format!("cannot write the top-songs TSV: {e}"),
            })?;
            tracing::info!(
                "top songs of {} written to {}",
                self.source.name,
                path.display()
            );
            answers.push(path.display().to_string());
        }
        summary.detail(&format!("{}_top_songs", self.source.name), answers);
        Ok(())
    }
}

/// The deliverable: header `track_name`, `artist_name`, `play_count`, one row per song.
/// Names never hold tabs or line breaks in Last.fm; should another source have them, they are
/// written as `\t`, `\n`, `\r` (and `\` as `\\`) so that the file stays one row per line.
pub fn top_songs_tsv(
    batches: &[RecordBatch],
) -> std::result::Result<String, datafusion::arrow::error::ArrowError> {
    let mut out = String::from("track_name\tartist_name\tplay_count\n");
    for b in batches {
        let (track, artist, count) = (
            text_column(b, "track_name")?,
            text_column(b, "artist_name")?,
            int64_column(b, "play_count")?,
        );
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
