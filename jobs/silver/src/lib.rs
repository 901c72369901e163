//! The silver job: conforms bronze into typed fact and dimension tables, source by source.
//!
//! Each source's rules are SQL in `sql/`: a `*_checked.sql` view types every bronze record and
//! names the first rule it breaks; the table queries keep what passes, and the quarantine
//! query keeps what does not, so every bronze record ends up in exactly one place (or is an
//! exact duplicate, counted in the run record). Each silver table is replaced in one commit.
//! A source whose bronze tables do not exist yet is skipped.

pub mod functions;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{DataFrame, SessionContext, lit};
use datafusion::scalar::ScalarValue;
use lake_runtime::{
    Input, LakeError, Result, Run, Summary, WriteMode, Written, int64_column, session, text_column,
};
use lake_schema::{
    BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES, BRONZE_SPARKIFY_EVENTS, BRONZE_SPARKIFY_SONGS,
    SILVER_LASTFM_LISTENS, SILVER_LASTFM_QUARANTINE, SILVER_LASTFM_USERS, SILVER_SPARKIFY_ARTISTS,
    SILVER_SPARKIFY_QUARANTINE, SILVER_SPARKIFY_SONGPLAYS, SILVER_SPARKIFY_SONGS,
    SILVER_SPARKIFY_TIME, SILVER_SPARKIFY_USERS, SILVER_SPARKIFY_USERS_HISTORY, TableDef,
};
use serde_json::json;

/// A named SQL file of this job.
struct Sql {
    name: &'static str,
    text: &'static str,
}

macro_rules! sql {
    ($name:literal) => {
        Sql {
            name: concat!("jobs/silver/sql/", $name, ".sql"),
            text: include_str!(concat!("../sql/", $name, ".sql")),
        }
    };
}

pub async fn run(run: Arc<Run>) -> Result<Summary> {
    let ctx = session();
    functions::register(&ctx);
    let mut silver = Silver {
        run: &run,
        ctx: &ctx,
        summary: Summary::default(),
    };
    let mut done = 0;
    if silver
        .inputs(&[&BRONZE_LASTFM_PLAYS, &BRONZE_LASTFM_PROFILES])
        .await?
    {
        silver.lastfm().await?;
        done += 1;
    }
    if silver
        .inputs(&[&BRONZE_SPARKIFY_SONGS, &BRONZE_SPARKIFY_EVENTS])
        .await?
    {
        silver.sparkify().await?;
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
    summary: Summary,
}

impl Silver<'_> {
    /// Registers a source's bronze tables; false (with a message) when none exists yet. A
    /// missing one of several is read as empty.
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
        for (def, version) in defs.iter().zip(versions) {
            self.summary.inputs.push(Input {
                name: def.qualified_name(),
                version,
            });
        }
        Ok(true)
    }

    async fn query(&self, sql: &Sql) -> Result<DataFrame> {
        self.ctx
            .sql(sql.text)
            .await
            .map_err(LakeError::query(sql.name))
    }

    async fn view(&self, name: &str, sql: &Sql) -> Result<()> {
        let df = self.query(sql).await?;
        self.register(name, sql, df)
    }

    /// Like [`Self::view`], but computed once and held in memory: for inputs that several tables
    /// read and that are costly to compute (JSON parsing) but small (a day of events).
    async fn cached_view(&self, name: &str, sql: &Sql) -> Result<()> {
        let df = self
            .query(sql)
            .await?
            .cache()
            .await
            .map_err(LakeError::query(sql.name))?;
        self.register(name, sql, df)
    }

    fn register(&self, name: &str, sql: &Sql, df: DataFrame) -> Result<()> {
        self.ctx
            .register_table(name, df.into_view())
            .map_err(LakeError::query(sql.name))?;
        Ok(())
    }

    /// Replaces `def` with the result of `sql`, then registers the new version for the queries
    /// that follow.
    async fn table(&mut self, def: &TableDef, sql: &Sql) -> Result<Written> {
        let df = self.query(sql).await?;
        self.write(def, df).await
    }

    async fn write(&mut self, def: &TableDef, df: DataFrame) -> Result<Written> {
        let written = self
            .run
            .lake
            .write(self.ctx, def, df, WriteMode::Overwrite, &self.run.id)
            .await?;
        self.run.lake.register(self.ctx, def).await?;
        self.summary.rows_out += written.rows;
        self.summary.outputs.push(written.clone());
        Ok(written)
    }

    /// Replaces the quarantine table `def` with the rows of `sql`; returns rejects per table.
    async fn quarantine(&mut self, def: &TableDef, sql: &Sql) -> Result<Vec<(String, u64)>> {
        let df = self
            .query(sql)
            .await?
            .with_column("run_id", lit(self.run.id.as_str()))
            .and_then(|df| {
                df.with_column(
                    "quarantined_at",
                    lit(ScalarValue::TimestampMicrosecond(
                        Some(self.run.started_micros()),
                        Some("UTC".into()),
                    )),
                )
            })
            .map_err(LakeError::query(sql.name))?;
        let written = self.write(def, df).await?;
        self.summary.rows_out -= written.rows;
        self.summary.rows_quarantined += written.rows;
        let sql = format!(
            "SELECT table_name, count(*) FROM {} GROUP BY table_name",
            def.qualified_name()
        );
        let batches = self.collect(&sql).await?;
        let bad = |e: datafusion::arrow::error::ArrowError| LakeError::query(&sql)(e.into());
        let mut per_table = Vec::new();
        for b in batches {
            let (names, counts) = (
                text_column(&b, 0).map_err(bad)?,
                int64_column(&b, 1).map_err(bad)?,
            );
            for i in 0..b.num_rows() {
                per_table.push((names.value(i).to_string(), counts.value(i) as u64));
            }
        }
        Ok(per_table)
    }

    async fn count(&self, table: &TableDef) -> Result<u64> {
        self.scalar(&format!("SELECT count(*) FROM {}", table.qualified_name()))
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

    async fn lastfm(&mut self) -> Result<()> {
        let plays_in = self.count(&BRONZE_LASTFM_PLAYS).await?;
        let profiles_in = self.count(&BRONZE_LASTFM_PROFILES).await?;
        self.summary.rows_in += plays_in + profiles_in;
        self.view("lastfm_plays_checked", &sql!("lastfm_plays_checked"))
            .await?;
        self.view("lastfm_profiles_checked", &sql!("lastfm_profiles_checked"))
            .await?;
        let listens = self
            .table(&SILVER_LASTFM_LISTENS, &sql!("lastfm_listens"))
            .await?;
        let users = self
            .table(&SILVER_LASTFM_USERS, &sql!("lastfm_users"))
            .await?;
        let rejected = self
            .quarantine(&SILVER_LASTFM_QUARANTINE, &sql!("lastfm_quarantine"))
            .await?;
        let rejected_of = |t: &TableDef| rejected_for(&rejected, t);
        // reconcile: every bronze play is a listen, a quarantined row or a duplicate
        let plays_rejected = rejected_of(&SILVER_LASTFM_LISTENS);
        let duplicates = plays_in.saturating_sub(listens.rows + plays_rejected);
        let profiles_rejected = rejected_of(&SILVER_LASTFM_USERS);
        let user_duplicates = profiles_in.saturating_sub(users.rows + profiles_rejected);
        tracing::info!(
            plays_in,
            listens = listens.rows,
            rejected = plays_rejected,
            duplicates,
            "Last.fm plays reconciled"
        );
        self.summary.detail("duplicate_plays_dropped", duplicates);
        self.summary
            .detail("duplicate_profiles_dropped", user_duplicates);
        Ok(())
    }

    async fn sparkify(&mut self) -> Result<()> {
        let songs_in = self.count(&BRONZE_SPARKIFY_SONGS).await?;
        let events_in = self.count(&BRONZE_SPARKIFY_EVENTS).await?;
        self.summary.rows_in += songs_in + events_in;
        self.cached_view("sparkify_songs_checked", &sql!("sparkify_songs_checked"))
            .await?;
        self.cached_view("sparkify_events_checked", &sql!("sparkify_events_checked"))
            .await?;
        let songs = self
            .table(&SILVER_SPARKIFY_SONGS, &sql!("sparkify_songs"))
            .await?;
        let artists = self
            .table(&SILVER_SPARKIFY_ARTISTS, &sql!("sparkify_artists"))
            .await?;
        let songplays = self
            .table(&SILVER_SPARKIFY_SONGPLAYS, &sql!("sparkify_songplays"))
            .await?;
        self.table(&SILVER_SPARKIFY_TIME, &sql!("sparkify_time"))
            .await?;
        let users = self
            .table(&SILVER_SPARKIFY_USERS, &sql!("sparkify_users"))
            .await?;
        self.table(
            &SILVER_SPARKIFY_USERS_HISTORY,
            &sql!("sparkify_users_history"),
        )
        .await?;
        let rejected = self
            .quarantine(&SILVER_SPARKIFY_QUARANTINE, &sql!("sparkify_quarantine"))
            .await?;
        let matched = self
            .scalar("SELECT count(*) FROM silver.sparkify_songplays WHERE song_id IS NOT NULL")
            .await?;
        // reconcile: every event is a song play, another page's event, or quarantined
        let events_rejected = rejected_for(&rejected, &SILVER_SPARKIFY_SONGPLAYS);
        let songs_rejected = rejected_for(&rejected, &SILVER_SPARKIFY_SONGS);
        let other_events = events_in.saturating_sub(songplays.rows + events_rejected);
        self.summary.detail(
            "sparkify",
            json!({
                "events_in": events_in,
                "songplays": songplays.rows,
                "songplays_matching_song_data": matched,
                "events_of_other_pages": other_events,
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

fn rejected_for(rejected: &[(String, u64)], table: &TableDef) -> u64 {
    let name = table.qualified_name();
    rejected
        .iter()
        .filter(|(t, _)| *t == name)
        .map(|(_, n)| *n)
        .sum()
}
