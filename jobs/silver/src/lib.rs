//! The silver job: conforms bronze into typed fact and dimension tables, source by source.
//!
//! Each source's rules are SQL in `sql/`: a `*_checked.sql` view types every bronze record and
//! names the first rule it breaks; the table queries keep what passes, and the quarantine
//! query keeps what does not, so every bronze record ends up in exactly one place (or is an
//! exact duplicate, counted in the run record). A source whose bronze tables do not exist yet
//! is skipped.
//!
//! Runs are incremental. Bronze rows carry the batch that landed them; every silver commit
//! records the last bronze batch it includes as the Delta transaction [`SILVER_TXN`], in the
//! same commit as its rows. A run reads that per table and rebuilds only what the newer
//! batches change ([`Kind`]): the months they touch of a month-partitioned table, the whole of
//! a small dimension, the new rejects of a quarantine. A crash between two tables' commits
//! leaves each table knowing what it holds, so the re-run finishes exactly the rest.
//! `--full-refresh` rebuilds every table from all of bronze; `--from`/`--to` rebuilds the
//! months of a date range of the month-partitioned tables, each table in one commit.

pub mod functions;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    Input, LakeError, Month, Months, Result, Run, Scope, Summary, WriteMode, Written, int64_column,
    session,
};
use lake_schema::{
    BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES, BRONZE_SPARKIFY_EVENTS, BRONZE_SPARKIFY_SONGS,
    SILVER_LASTFM_LISTENS, SILVER_LASTFM_QUARANTINE, SILVER_LASTFM_USERS, SILVER_SPARKIFY_ARTISTS,
    SILVER_SPARKIFY_QUARANTINE, SILVER_SPARKIFY_SONGPLAYS, SILVER_SPARKIFY_SONGS,
    SILVER_SPARKIFY_TIME, SILVER_SPARKIFY_USERS, SILVER_SPARKIFY_USERS_HISTORY, TableDef,
};
use serde_json::json;

/// The Delta application id under which each silver table records the last bronze batch it
/// includes.
pub const SILVER_TXN: &str = "lake.silver";

/// A named SQL file of this job.
struct Sql {
    name: &'static str,
    text: &'static str,
    /// Views the query reads that are computed first, from the same narrowed inputs, and held
    /// in memory under their names (small results that the query reads more than once).
    held: &'static [(&'static str, Sql)],
}

macro_rules! sql {
    ($name:literal) => {
        sql!($name, held: [])
    };
    ($name:literal, held: [$($view:literal),*]) => {
        Sql {
            name: concat!("jobs/silver/sql/", $name, ".sql"),
            text: include_str!(concat!("../sql/", $name, ".sql")),
            held: &[$(($view, sql!($view))),*],
        }
    };
}

/// How a table follows bronze when new batches arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Partitioned by `year` and `month`. New batches rebuild the months their accepted rows
    /// fall in when `new_rows` names the checked view (with `played_at`) that holds them; the
    /// whole table otherwise (when its rows depend on other tables, as Sparkify's song plays
    /// depend on the song catalogue). A backfill rebuilds its months.
    Monthly { new_rows: Option<&'static str> },
    /// A dimension, rebuilt whole from all of its source when anything changed.
    Whole,
    /// A quarantine: the rejects of new batches are appended.
    Rejects,
}

/// What a run does to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refresh {
    /// It holds every bronze batch already.
    UpToDate,
    /// A backfill does not touch it (it is not partitioned by date).
    NotInScope,
    /// Rebuild it from all of bronze.
    Full,
    /// Rebuild these months, replacing their partitions.
    Months(Months),
    /// Append what the batches after this one bring.
    After(i64),
}

impl Refresh {
    fn describe(&self) -> String {
        match self {
            Refresh::UpToDate => "up to date: no new bronze batch".into(),
            Refresh::NotInScope => "not in the backfill: not partitioned by date".into(),
            Refresh::Full => "rebuilt in full".into(),
            Refresh::Months(m) if m.is_empty() => {
                "no month to replace: the new bronze batches hold no accepted row".into()
            }
            Refresh::Months(m) => format!("months replaced: {}", m.predicate("year", "month")),
            Refresh::After(b) => format!("appended the rows of bronze batches after {b}"),
        }
    }
}

/// A source's checked view: the SQL that types and checks its bronze rows.
struct Checked {
    name: &'static str,
    sql: Sql,
    /// A column with the record's time as ISO-8601 text, to skip bronze files outside the
    /// months a run rebuilds.
    time_text: Option<&'static str>,
    /// Computed once and held in memory (costly to compute, read by several tables).
    cached: bool,
}

pub async fn run(run: Arc<Run>, scope: Scope) -> Result<Summary> {
    let ctx = session(&run.cfg);
    functions::register(&ctx);
    let mut silver = Silver {
        run: &run,
        ctx: &ctx,
        scope,
        summary: Summary::default(),
        checked: Vec::new(),
        high: 0,
        progress: Progress::default(),
    };
    silver.summary.detail("scope", format!("{scope:?}"));
    let mut done = 0;
    if silver
        .inputs(&[&BRONZE_LASTFM_PLAYS, &BRONZE_LASTFM_PROFILES])
        .await?
    {
        silver.lastfm().await?;
        silver.progress.finish();
        done += 1;
    }
    if silver
        .inputs(&[&BRONZE_SPARKIFY_SONGS, &BRONZE_SPARKIFY_EVENTS])
        .await?
    {
        silver.sparkify().await?;
        silver.progress.finish();
        done += 1;
    }
    if done == 0 {
        tracing::warn!("no bronze tables in {} yet: run bronze first", run.cfg.lake);
    }
    Ok(silver.summary)
}

struct Silver<'a> {
    run: &'a Run,
    ctx: &'a SessionContext,
    scope: Scope,
    summary: Summary,
    /// The current source's checked views, unfiltered.
    checked: Vec<(&'static Checked, DataFrame)>,
    /// The newest bronze batch of the current source.
    high: i64,
    progress: Progress,
}

impl Silver<'_> {
    /// Registers a source's bronze tables and notes the newest batch they hold; false (with a
    /// message) when none exists yet. A missing one of several is read as empty.
    async fn inputs(&mut self, defs: &[&TableDef]) -> Result<bool> {
        let mut versions = Vec::new();
        for def in defs {
            versions.push(self.run.lake.register(self.ctx, def).await?);
        }
        if versions.iter().all(Option::is_none) {
            tracing::info!(
                "{} not landed yet: skipping this source",
                defs.iter()
                    .map(|d| d.qualified_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(false);
        }
        self.high = 0;
        for (def, version) in defs.iter().zip(versions) {
            self.summary.inputs.push(Input {
                name: def.qualified_name(),
                version,
            });
            let newest = self
                .scalar(&format!(
                    "SELECT coalesce(max(batch), 0) FROM {}",
                    def.qualified_name()
                ))
                .await?;
            self.high = self.high.max(newest as i64);
        }
        Ok(true)
    }

    async fn query(&self, sql: &Sql) -> Result<DataFrame> {
        self.ctx
            .sql(sql.text)
            .await
            .map_err(LakeError::query(sql.name))
    }

    /// Plans the source's checked views (computing the cached ones now).
    async fn checked(&mut self, views: &'static [Checked]) -> Result<()> {
        self.checked.clear();
        for view in views {
            let mut df = self.query(&view.sql).await?;
            if view.cached {
                df = df.cache().await.map_err(LakeError::query(view.sql.name))?;
            }
            self.checked.push((view, df));
        }
        Ok(())
    }

    /// Registers the checked views, narrowed to what `refresh` reads.
    fn narrow_inputs(&self, refresh: &Refresh) -> Result<()> {
        for (view, df) in &self.checked {
            let predicate = match refresh {
                Refresh::Months(m) => view.time_text.map(|c| m.text_predicate(c)),
                Refresh::After(b) => Some(format!("batch > {b}")),
                _ => None,
            };
            let err = LakeError::query(view.sql.name);
            let df = match predicate {
                Some(p) => {
                    let expr = df.parse_sql_expr(&p).map_err(&err)?;
                    df.clone().filter(expr).map_err(&err)?
                }
                None => df.clone(),
            };
            self.ctx.deregister_table(view.name).map_err(&err)?;
            self.ctx
                .register_table(view.name, df.into_view())
                .map_err(err)?;
        }
        Ok(())
    }

    /// What this run does to `def`.
    async fn plan(&self, def: &TableDef, kind: Kind) -> Result<Refresh> {
        let monthly = matches!(kind, Kind::Monthly { .. });
        Ok(match self.scope {
            Scope::Full => Refresh::Full,
            Scope::Range(from, to) if monthly => Refresh::Months(Months::of_range(from, to)),
            Scope::Range(..) => Refresh::NotInScope,
            Scope::Changed => match self.run.lake.txn_version(def, SILVER_TXN).await? {
                None => Refresh::Full,
                Some(held) if held >= self.high => Refresh::UpToDate,
                Some(held) => match kind {
                    Kind::Monthly {
                        new_rows: Some(view),
                    } => Refresh::Months(self.new_months(view, held).await?),
                    Kind::Monthly { .. } | Kind::Whole => Refresh::Full,
                    Kind::Rejects => Refresh::After(held),
                },
            },
        })
    }

    /// The months of the accepted rows of `view` (a checked view with `played_at`) that
    /// bronze batches after `held` brought.
    async fn new_months(&self, view: &str, held: i64) -> Result<Months> {
        self.narrow_inputs(&Refresh::Full)?;
        let err = LakeError::query(format!("months of new rows in {view}"));
        let df = self.ctx.table(view).await.map_err(&err)?;
        let year = datafusion::functions::expr_fn::date_part(lit("year"), col("played_at"));
        let month = datafusion::functions::expr_fn::date_part(lit("month"), col("played_at"));
        let batches = df
            .filter(
                col("batch")
                    .gt(lit(held))
                    .and(col("reject_reason").is_null()),
            )
            .and_then(|df| df.select(vec![year.alias("y"), month.alias("m")]))
            .and_then(|df| df.distinct())
            .map_err(&err)?
            .collect()
            .await
            .map_err(&err)?;
        let mut months = Vec::new();
        for b in &batches {
            let (y, m) = (
                int64_column(b, 0).map_err(|e| err(e.into()))?,
                int64_column(b, 1).map_err(|e| err(e.into()))?,
            );
            for i in 0..b.num_rows() {
                months.push(Month {
                    year: y.value(i) as i32,
                    month: m.value(i) as u32,
                });
            }
        }
        months.sort();
        Ok(Months::each(months))
    }

    /// Plans and carries out the refresh of `def` with the rows of `sql`; returns the plan and
    /// what was written (`None` when nothing was).
    async fn refresh(
        &mut self,
        def: &TableDef,
        sql: &Sql,
        kind: Kind,
    ) -> Result<(Refresh, Option<Written>)> {
        let refresh = self.plan(def, kind).await?;
        let written = self.refresh_table(def, sql, kind, &refresh).await;
        self.progress.inc(1);
        Ok((refresh, written?))
    }

    async fn refresh_table(
        &mut self,
        def: &TableDef,
        sql: &Sql,
        kind: Kind,
        refresh: &Refresh,
    ) -> Result<Option<Written>> {
        let name = def.qualified_name();
        tracing::info!(table = %name, "{}", refresh.describe());
        self.summary
            .details
            .insert(format!("{name} refresh"), json!(refresh.describe()));
        let mode = match refresh {
            Refresh::UpToDate | Refresh::NotInScope => return Ok(None),
            Refresh::Full => WriteMode::Overwrite,
            // new batches without an accepted row: a commit of no rows records them as consumed
            Refresh::Months(m) if m.is_empty() => WriteMode::Append,
            Refresh::Months(m) => WriteMode::Replace(m.predicate("year", "month")),
            Refresh::After(_) => WriteMode::Append,
        };
        self.narrow_inputs(refresh)?;
        for (view, held) in sql.held {
            let err = LakeError::query(held.name);
            let df = self.query(held).await?.cache().await.map_err(&err)?;
            self.ctx.deregister_table(*view).map_err(&err)?;
            self.ctx
                .register_table(*view, df.into_view())
                .map_err(err)?;
        }
        let mut df = self.query(sql).await?;
        let err = LakeError::query(sql.name);
        if let Refresh::Months(m) = refresh {
            let expr = df
                .parse_sql_expr(&m.predicate("year", "month"))
                .map_err(&err)?;
            df = df.filter(expr).map_err(&err)?;
        }
        if kind == Kind::Rejects {
            let at = ScalarValue::TimestampMicrosecond(
                Some(self.run.started_micros()),
                Some("UTC".into()),
            );
            df = df
                .with_column("run_id", lit(self.run.id.as_str()))
                .and_then(|df| df.with_column("quarantined_at", lit(at)))
                .map_err(&err)?;
        }
        // a backfill does not consume new batches: only runs over all changes record them
        let mut commit = self.run.commit();
        if !matches!(self.scope, Scope::Range(..)) {
            commit = commit.txn(SILVER_TXN, self.high);
        }
        let written = self
            .run
            .lake
            .write(self.ctx, def, df, mode, &commit)
            .await?;
        self.run.lake.register(self.ctx, def).await?;
        self.summary.outputs.push(written.clone());
        Ok(Some(written))
    }

    /// Rebuilds a fact or dimension table; its rows count as rows out.
    async fn table(
        &mut self,
        def: &TableDef,
        sql: &Sql,
        kind: Kind,
    ) -> Result<(Refresh, Option<Written>)> {
        let (refresh, written) = self.refresh(def, sql, kind).await?;
        self.summary.rows_out += written.as_ref().map_or(0, |w| w.rows);
        Ok((refresh, written))
    }

    /// Adds the rejects of `sql` to the quarantine table `def`; their rows count as quarantined.
    async fn quarantine(&mut self, def: &TableDef, sql: &Sql) -> Result<()> {
        let (_, written) = self.refresh(def, sql, Kind::Rejects).await?;
        self.summary.rows_quarantined += written.as_ref().map_or(0, |w| w.rows);
        Ok(())
    }

    /// Counts rows of a checked view as narrowed for `refresh`: (all, rejected). Months are
    /// those of `played_at`, which only the plays view has.
    async fn checked_counts(&self, view: &str, refresh: &Refresh) -> Result<(u64, u64)> {
        self.narrow_inputs(refresh)?;
        let sql = format!(
            "SELECT count(*), count(reject_reason) FROM {view}{}",
            in_months(refresh)
        );
        let batches = self.collect(&sql).await?;
        let bad = |e: datafusion::arrow::error::ArrowError| LakeError::query(&sql)(e.into());
        let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok((0, 0));
        };
        let (all, rejected) = (
            int64_column(b, 0).map_err(bad)?,
            int64_column(b, 1).map_err(bad)?,
        );
        Ok((all.value(0) as u64, rejected.value(0) as u64))
    }

    /// Counts rows of a checked view as narrowed for `refresh`. Unless months narrow it, this
    /// reads no column of bronze but `batch`: nothing is parsed.
    async fn checked_rows(&self, view: &str, refresh: &Refresh) -> Result<u64> {
        self.narrow_inputs(refresh)?;
        self.scalar(&format!(
            "SELECT count(*) FROM {view}{}",
            in_months(refresh)
        ))
        .await
    }

    async fn collect(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.ctx.sql(sql).await.map_err(LakeError::query(sql))?;
        df.collect().await.map_err(LakeError::query(sql))
    }

    /// The single integer a query such as `SELECT count(*) …` returns.
    async fn scalar(&self, sql: &str) -> Result<u64> {
        let batches = self.collect(sql).await?;
        let first = batches.first().map(|b| int64_column(b, 0)).transpose();
        let first = first.map_err(|e| LakeError::query(sql)(e.into()))?;
        Ok(first.filter(|a| !a.is_empty()).map_or(0, |a| a.value(0)) as u64)
    }

    /// Bronze rows of the checked views that this run consumes: those of batches newer than
    /// the oldest any table holds (all of them in a full refresh, the range in a backfill).
    async fn rows_read(&mut self, tables: &[&TableDef]) -> Result<u64> {
        let consumed = match self.scope {
            Scope::Full => Refresh::Full,
            Scope::Range(from, to) => Refresh::Months(Months::of_range(from, to)),
            Scope::Changed => {
                let mut oldest = Some(i64::MAX);
                for t in tables {
                    let held = self.run.lake.txn_version(t, SILVER_TXN).await?;
                    oldest = oldest.zip(held).map(|(a, b)| a.min(b));
                }
                oldest.map_or(Refresh::Full, Refresh::After)
            }
        };
        // lineage: which bronze batches this run consumes (a backfill consumes none)
        let after = match consumed {
            Refresh::After(b) => Some(b),
            Refresh::Full => Some(0),
            _ => None,
        };
        if let (Some(after), Some(source)) = (after, tables.first().and_then(|t| t.source)) {
            self.summary.detail(
                &format!("{source}_bronze_batches"),
                json!({"after": after, "through": self.high}),
            );
        }
        let mut read = 0;
        let views: Vec<&'static Checked> = self.checked.iter().map(|(v, _)| *v).collect();
        for view in views {
            // a backfill reads the views with a time to narrow by (the plays)
            if matches!(consumed, Refresh::Months(_)) && view.time_text.is_none() {
                continue;
            }
            read += self.checked_rows(view.name, &consumed).await?;
        }
        self.summary.rows_in += read;
        Ok(read)
    }

    async fn lastfm(&mut self) -> Result<()> {
        const SOURCE_LABEL: &str = "silver lastfm";
        const VIEWS: &[Checked] = &[
            Checked {
                name: "lastfm_plays_checked",
                sql: sql!("lastfm_plays_checked"),
                time_text: Some("raw_timestamp"),
                cached: false,
            },
            Checked {
                name: "lastfm_profiles_checked",
                sql: sql!("lastfm_profiles_checked"),
                time_text: None,
                cached: false,
            },
        ];
        let tables = [
            &SILVER_LASTFM_LISTENS,
            &SILVER_LASTFM_USERS,
            &SILVER_LASTFM_QUARANTINE,
        ];
        self.checked(VIEWS).await?;
        self.rows_read(&tables).await?;
        self.progress = Progress::new(SOURCE_LABEL, tables.len() as u64, Unit::Steps);
        let listens_kind = Kind::Monthly {
            new_rows: Some("lastfm_plays_checked"),
        };
        let (listens_plan, listens) = self
            .table(
                &SILVER_LASTFM_LISTENS,
                &sql!("lastfm_listens", held: ["lastfm_repeated_keys"]),
                listens_kind,
            )
            .await?;
        let (_, users) = self
            .table(&SILVER_LASTFM_USERS, &sql!("lastfm_users"), Kind::Whole)
            .await?;
        self.quarantine(&SILVER_LASTFM_QUARANTINE, &sql!("lastfm_quarantine"))
            .await?;
        // reconcile: every bronze play of the months rebuilt is a listen, a reject or a duplicate
        if let Some(listens) = listens {
            let (plays, rejected) = match listens_plan {
                Refresh::Months(_) => {
                    self.checked_counts("lastfm_plays_checked", &listens_plan)
                        .await?
                }
                // all of bronze: the quarantine (refreshed above) holds every reject, so no
                // play is parsed again to count them
                _ => (
                    self.checked_rows("lastfm_plays_checked", &Refresh::Full)
                        .await?,
                    self.scalar(
                        "SELECT count(*) FROM silver.lastfm_quarantine \
                         WHERE table_name = 'silver.lastfm_listens'",
                    )
                    .await?,
                ),
            };
            let duplicates = plays.saturating_sub(listens.rows + rejected);
            tracing::info!(
                plays,
                listens = listens.rows,
                rejected,
                duplicates,
                "Last.fm plays reconciled"
            );
            self.summary.detail("duplicate_plays_dropped", duplicates);
        }
        if let Some(users) = users {
            let (profiles, rejected) = self
                .checked_counts("lastfm_profiles_checked", &Refresh::Full)
                .await?;
            self.summary.detail(
                "duplicate_profiles_dropped",
                profiles.saturating_sub(users.rows + rejected),
            );
        }
        Ok(())
    }

    async fn sparkify(&mut self) -> Result<()> {
        const SOURCE_LABEL: &str = "silver sparkify";
        const VIEWS: &[Checked] = &[
            Checked {
                name: "sparkify_songs_checked",
                sql: sql!("sparkify_songs_checked"),
                time_text: None,
                cached: true,
            },
            Checked {
                name: "sparkify_events_checked",
                sql: sql!("sparkify_events_checked"),
                time_text: None,
                cached: true,
            },
        ];
        let tables = [
            &SILVER_SPARKIFY_SONGS,
            &SILVER_SPARKIFY_ARTISTS,
            &SILVER_SPARKIFY_SONGPLAYS,
            &SILVER_SPARKIFY_TIME,
            &SILVER_SPARKIFY_USERS,
            &SILVER_SPARKIFY_USERS_HISTORY,
            &SILVER_SPARKIFY_QUARANTINE,
        ];
        self.checked(VIEWS).await?;
        self.rows_read(&tables).await?;
        self.progress = Progress::new(SOURCE_LABEL, tables.len() as u64, Unit::Steps);
        // song plays are matched against the whole song catalogue: new data rebuilds them whole
        let monthly = Kind::Monthly { new_rows: None };
        let (_, songs) = self
            .table(&SILVER_SPARKIFY_SONGS, &sql!("sparkify_songs"), Kind::Whole)
            .await?;
        let (_, artists) = self
            .table(
                &SILVER_SPARKIFY_ARTISTS,
                &sql!("sparkify_artists"),
                Kind::Whole,
            )
            .await?;
        let (_, songplays) = self
            .table(
                &SILVER_SPARKIFY_SONGPLAYS,
                &sql!("sparkify_songplays"),
                monthly,
            )
            .await?;
        self.table(&SILVER_SPARKIFY_TIME, &sql!("sparkify_time"), monthly)
            .await?;
        let (_, users) = self
            .table(&SILVER_SPARKIFY_USERS, &sql!("sparkify_users"), Kind::Whole)
            .await?;
        self.table(
            &SILVER_SPARKIFY_USERS_HISTORY,
            &sql!("sparkify_users_history"),
            Kind::Whole,
        )
        .await?;
        self.quarantine(&SILVER_SPARKIFY_QUARANTINE, &sql!("sparkify_quarantine"))
            .await?;
        let (Some(songs), Some(artists), Some(songplays), Some(users)) =
            (songs, artists, songplays, users)
        else {
            return Ok(());
        };
        // a full rebuild: reconcile every event and song
        let (events_in, events_rejected) = self
            .checked_counts("sparkify_events_checked", &Refresh::Full)
            .await?;
        let (songs_in, songs_rejected) = self
            .checked_counts("sparkify_songs_checked", &Refresh::Full)
            .await?;
        let matched = self
            .scalar("SELECT count(*) FROM silver.sparkify_songplays WHERE song_id IS NOT NULL")
            .await?;
        self.summary.detail(
            "sparkify",
            json!({
                "events_in": events_in,
                "songplays": songplays.rows,
                "songplays_matching_song_data": matched,
                "events_of_other_pages": events_in.saturating_sub(songplays.rows + events_rejected),
                "events_rejected": events_rejected,
                "songs_in": songs_in,
                "songs": songs.rows,
                "duplicate_songs_dropped": songs_in.saturating_sub(songs.rows + songs_rejected),
                "songs_rejected": songs_rejected,
                "artists": artists.rows,
                "users": users.rows,
            }),
        );
        Ok(())
    }
}

/// ` WHERE` the row's `played_at` lies in the months `refresh` rebuilds, if it rebuilds months.
fn in_months(refresh: &Refresh) -> String {
    match refresh {
        Refresh::Months(m) => format!(
            " WHERE {}",
            m.predicate(
                "date_part('year', played_at)",
                "date_part('month', played_at)"
            )
        ),
        _ => String::new(),
    }
}
