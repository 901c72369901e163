//! Listening sessions over a source's plays, the same SQL for every source: sessions, the 50
//! longest, the 10 songs most played in them, delivered as `<lake>/gold/<source>/top_songs.tsv`.
//!
//! A run after a delivery does not sessionize every play again. Plays before the earliest
//! month the delivery changed are as they were, and so is every session that ended more than
//! the session gap before that month: no play from then on can continue it. The run keeps
//! those sessions, reads only the plays after each user's last kept one, numbers the sessions
//! it finds on from there, and replaces the months from the first session it rebuilds.

use std::fmt::Write as _;
use std::path::PathBuf;

use bytes::Bytes;
use chrono::{DateTime, NaiveTime};
use datafusion::arrow::array::RecordBatch;
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::JoinType;
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use lake_runtime::progress::Progress;
use lake_runtime::{
    LakeError, Month, Months, Refresh, Result, Scope, Sql, Summary, Written, conform, counts,
    int64_column, register_view, sql, text_column,
};
use lake_schema::TableDef;

use crate::sources::Sessions;
use crate::{Built, Changes, Gold};

pub const SESSIONS: Sql = sql!("sessions");
pub const TOP_SESSIONS: Sql = sql!("top_sessions");
pub const TOP_SONGS: Sql = sql!("top_songs");

pub const TOP_SONGS_FILE: &str = "top_songs.tsv";

/// The longest gap between the starts of two plays of one session, in seconds: the rule of
/// `sessions.sql`, which a run after a delivery needs to know how far back a new play reaches.
const SESSION_GAP_SECONDS: i64 = 1200;

impl Gold<'_> {
    /// Builds sessions, top sessions and top songs in turn, each step reading the table the one
    /// before committed (so the answer matches the tables), and delivers the top songs.
    pub(crate) async fn sessions(
        &self,
        tables: &Sessions,
        out: Option<&PathBuf>,
        progress: &Progress,
        summary: &mut Summary,
    ) -> Result<Built> {
        register_view(&self.ctx, "plays", tables.plays.plan(&self.ctx).await?)?;
        let (sessions, read) = self.build_sessions(tables, summary).await?;
        let mut written: Vec<Written> = sessions.into_iter().collect();
        progress.inc(1);
        self.register_built(tables.sessions, "sessions").await?;
        for (sql, def, next_view) in [
            (&TOP_SESSIONS, tables.top_sessions, "top_sessions"),
            (&TOP_SONGS, tables.top_songs, "top_songs"),
        ] {
            written.extend(self.build_table(sql, def, summary).await?);
            progress.inc(1);
            self.register_built(def, next_view).await?;
        }
        self.deliver(tables, out, summary).await?;
        Ok(Built { written, read })
    }

    /// Registers the table `def` as it now is as the view `name`, for the steps after it.
    async fn register_built(&self, def: &TableDef, name: &str) -> Result<()> {
        self.lake.register(&self.ctx, def).await?;
        let table = self
            .ctx
            .table(def.qualified_name())
            .await
            .map_err(LakeError::query(def.qualified_name()))?;
        register_view(&self.ctx, name, table)
    }

    /// Plans and writes the sessions table in one commit (`None` when it is left alone), and
    /// counts the plays it read.
    async fn build_sessions(
        &self,
        tables: &Sessions,
        summary: &mut Summary,
    ) -> Result<(Option<Written>, u64)> {
        let def = tables.sessions;
        let (refresh, cut) = self.plan_sessions(tables).await?;
        self.describe(def, &refresh, summary);
        let Some(mode) = refresh.write_mode() else {
            return Ok((None, 0));
        };
        let df = sessions_from(&self.ctx, def, cut).await?;
        let written = self.write(def, df, mode, &refresh).await?;
        let read = match cut.is_some() || refresh == Refresh::Full {
            true => self.session_plays().await?,
            false => 0,
        };
        Ok((Some(written), read))
    }

    /// What this run does to the sessions table, and the time it rebuilds the sessions from
    /// (`None`: all of them). A run over all changes after a delivery rebuilds from the first
    /// month the delivery changed, or from the start of an earlier session one of that month's
    /// plays could continue; everything else rebuilds in full, as the other tables do.
    async fn plan_sessions(&self, tables: &Sessions) -> Result<(Refresh, Option<i64>)> {
        let def = tables.sessions;
        if self.scope != Scope::Changed {
            return Ok((self.plan(def).await?, None));
        }
        let first = match self
            .changes(def, |input| tables.plays_from.is(input))
            .await?
        {
            Changes::Nothing => return Ok((Refresh::UpToDate, None)),
            Changes::Unknown => return Ok((Refresh::Full, None)),
            Changes::Months(months) => months.first().copied(),
        };
        let Some(first) = first else {
            // the plays are as they were, and so are the sessions (only another input moved)
            return Ok((Refresh::UpToDate, None));
        };
        self.register_built(def, "sessions").await?;
        let from = first.first_day().and_time(NaiveTime::MIN).and_utc();
        let cut = first_reached(&self.ctx, from.timestamp_micros()).await?;
        let month =
            DateTime::from_timestamp_micros(cut).map_or(first, |t| Month::of(t.date_naive()));
        Ok((
            Refresh::Months(Months::of_range(Some(month), None)),
            Some(cut),
        ))
    }

    /// The plays the sessions were computed from.
    async fn session_plays(&self) -> Result<u64> {
        let err = LakeError::query("session_plays");
        let plays = self.ctx.table("session_plays").await.map_err(&err)?;
        Ok(plays.count().await.map_err(err)? as u64)
    }

    /// Writes the top songs TSV into the lake (and to `out`, when given).
    async fn deliver(
        &self,
        tables: &Sessions,
        out: Option<&PathBuf>,
        summary: &mut Summary,
    ) -> Result<()> {
        let context = tables.top_songs.qualified_name();
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
        let name = self.source.name;
        let folder = self.run.lake.root().child(&format!("gold/{name}"))?;
        let url = folder
            .put_file(TOP_SONGS_FILE, Bytes::from(tsv.clone()))
            .await?;
        tracing::info!("top songs of {name} written to {url}");
        let mut answers = vec![url];
        if let Some(path) = out {
            std::fs::write(path, &tsv).map_err(|e| LakeError::Io {
                location: path.display().to_string(),
                message: format!("cannot write the top-songs TSV: {e}"),
            })?;
            tracing::info!("top songs of {name} written to {}", path.display());
            answers.push(path.display().to_string());
        }
        summary.detail(&format!("{name}_top_songs"), answers);
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

/// Where a run whose plays changed from `from` on (microseconds) rebuilds the sessions from:
/// `from`, or the start of the first session of the `sessions` view that ended at most the
/// session gap before it (a play at `from` could continue it).
pub async fn first_reached(ctx: &SessionContext, from: i64) -> Result<i64> {
    let reach = timestamp(from - SESSION_GAP_SECONDS * 1_000_000);
    let err = LakeError::query("sessions a delivery can reach");
    let reached = ctx
        .table("sessions")
        .await
        .and_then(|df| df.filter(col("ended_at").gt_eq(lit(reach))))
        .and_then(|df| {
            df.aggregate(
                vec![],
                vec![
                    count(lit(1)).alias("sessions"),
                    min(col("started_at")).alias("first"),
                ],
            )
        })
        .map_err(err)?;
    let n = counts(reached, "sessions a delivery can reach").await?;
    Ok(match n.get("sessions") {
        0 => from,
        _ => n.get("first").min(from),
    })
}

/// The sessions of a run, over the view `plays`, in the columns of `def`. With no `cut`, those
/// of every play. With one, the sessions of the `sessions` view that started before it are
/// kept as they are, and the plays after each user's last kept session are sessionized and
/// numbered on after them; both are returned (a write replacing months keeps the rows of
/// its months).
pub async fn sessions_from(
    ctx: &SessionContext,
    def: &TableDef,
    cut: Option<i64>,
) -> Result<DataFrame> {
    let err = LakeError::query(SESSIONS.path);
    let plays = ctx.table("plays").await.map_err(&err)?;
    let per_user = |df: DataFrame, last: &str| {
        df.aggregate(
            vec![col("user_id")],
            vec![
                count(lit(1)).alias("sessions"),
                max(col(last)).alias("last_ended_at"),
            ],
        )
    };
    let Some(cut) = cut else {
        let none = per_user(plays.clone().filter(lit(false)).map_err(&err)?, "played_at");
        register_view(ctx, "earlier", none.map_err(&err)?)?;
        register_view(ctx, "session_plays", plays)?;
        return conform(SESSIONS.plan(ctx).await?, def);
    };
    let at = lit(timestamp(cut));
    let kept = ctx
        .table("sessions")
        .await
        .and_then(|df| df.filter(col("started_at").lt(at.clone())))
        .map_err(&err)?;
    let earlier = per_user(kept.clone(), "ended_at").map_err(&err)?;
    let reach = earlier
        .clone()
        .select(vec![
            col("user_id").alias("kept_user"),
            col("last_ended_at"),
        ])
        .map_err(&err)?;
    let after_kept = col("last_ended_at")
        .is_null()
        .or(col("played_at").gt(col("last_ended_at")));
    let later = plays
        .filter(col("played_at").gt_eq(at))
        .and_then(|df| df.join(reach, JoinType::Left, &["user_id"], &["kept_user"], None))
        .and_then(|df| df.filter(after_kept))
        .and_then(|df| df.select_columns(&["user_id", "played_at"]))
        .map_err(&err)?;
    register_view(ctx, "earlier", earlier)?;
    register_view(ctx, "session_plays", later)?;
    let found = conform(SESSIONS.plan(ctx).await?, def)?;
    found.union(conform(kept, def)?).map_err(err)
}

/// A UTC timestamp literal of `micros`.
fn timestamp(micros: i64) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into()))
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

        use datafusion::arrow::array::{AsArray, BooleanArray};
        use datafusion::arrow::compute::filter_record_batch;
        use datafusion::arrow::datatypes::TimestampMicrosecondType;
        use datafusion::prelude::DataFrame;
        use lake_runtime::Sql;
        use lake_schema::GOLD_LASTFM_SESSIONS;

        use super::super::{TOP_SESSIONS, TOP_SONGS, first_reached, sessions_from};

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
            keep(ctx, df, name).await
        }

        /// Collects `df` and registers it as the table `name`; returns it as text rows.
        async fn keep(ctx: &SessionContext, df: DataFrame, name: &str) -> Vec<String> {
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.expect(name);
            let table = MemTable::try_new(schema, vec![batches.clone()]).expect("mem table");
            ctx.deregister_table(name).expect("deregister");
            ctx.register_table(name, Arc::new(table)).expect("register");
            text_rows(&batches)
        }

        fn text_rows(batches: &[RecordBatch]) -> Vec<String> {
            let options =
                FormatOptions::default().with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%SZ"));
            let mut rows = Vec::new();
            for b in batches {
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
            rows
        }

        /// The sessions of `ctx`'s `plays` from `cut` (see [`sessions_from`]), registered as
        /// `sessions`; their rows without the partition columns, sorted.
        async fn sessions(ctx: &SessionContext, cut: Option<i64>) -> Vec<String> {
            let df = sessions_from(ctx, &GOLD_LASTFM_SESSIONS, cut)
                .await
                .expect("sessions");
            let mut rows: Vec<String> = keep(ctx, df, "sessions")
                .await
                .into_iter()
                .map(|r| r.split('\t').take(5).collect::<Vec<_>>().join("\t"))
                .collect();
            rows.sort();
            rows
        }

        #[tokio::test]
        async fn gold_sql_gives_the_rows_of_every_case() {
            let cases = cases();
            assert!(cases.len() >= 4, "cases.txt was not read");
            for case in cases {
                let ctx = SessionContext::new();
                ctx.register_batch("plays", plays(&case)).expect("plays");
                let sessions = sessions(&ctx, None).await;
                let _ = step(&ctx, &TOP_SESSIONS, "top_sessions").await;
                let top_songs = step(&ctx, &TOP_SONGS, "top_songs").await;
                if let Some(mut expected) = case.sessions {
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

        /// A run after a delivery, whatever the delivery brought from whatever time on, and
        /// whatever the lake held of that time before: its sessions are those of one run over
        /// every play.
        #[tokio::test]
        async fn sessions_rebuilt_after_a_delivery_equal_the_sessions_of_every_play() {
            for case in cases() {
                let all = plays(&case);
                let times = all.column(1).as_primitive::<TimestampMicrosecondType>();
                let mut from: Vec<i64> = times.iter().flatten().collect();
                from.sort();
                from.dedup();
                let once = SessionContext::new();
                once.register_batch("plays", all.clone()).expect("plays");
                let want = sessions(&once, None).await;
                for (t, alternate) in from.iter().flat_map(|t| [(*t, false), (*t, true)]) {
                    // what the lake held: the plays before t, and with `alternate` every
                    // other play from t on (the delivery brings the others)
                    let mut n = 0;
                    let held: BooleanArray = times
                        .iter()
                        .map(|p| {
                            let later = p.is_some_and(|p| p >= t);
                            n += usize::from(later);
                            Some(!later || (alternate && n % 2 == 0))
                        })
                        .collect();
                    let before = SessionContext::new();
                    let held = filter_record_batch(&all, &held).expect("held plays");
                    before.register_batch("plays", held).expect("plays");
                    let _ = sessions(&before, None).await;
                    let after = SessionContext::new();
                    let held = before.table("sessions").await.expect("held sessions");
                    let _ = keep(&after, held, "sessions").await;
                    after.register_batch("plays", all.clone()).expect("plays");
                    let cut = first_reached(&after, t).await.expect("cut");
                    assert!(
                        cut <= t,
                        "{}: the cut is never after the delivery",
                        case.name
                    );
                    let got = sessions(&after, Some(cut)).await;
                    assert_eq!(
                        got, want,
                        "{}: delivered from {t} (held every other play after: {alternate})",
                        case.name
                    );
                }
            }
        }
    }
}
