//! The silver job: conforms bronze into typed fact and dimension tables.
//!
//! Each source's rules are SQL in `sql/`: a `*_checked.sql` view types every bronze row and
//! names the first rule it breaks; the table queries keep what passes, and the quarantine
//! query keeps what does not, so every bronze row ends up in exactly one place (or is an
//! exact duplicate, counted in the run record). Each silver table is replaced in one commit.

pub mod functions;

use std::sync::Arc;

use datafusion::prelude::{SessionContext, lit};
use datafusion::scalar::ScalarValue;
use lake_runtime::{
    Input, LakeError, Result, Run, Summary, WriteMode, int64_column, session, text_column,
};
use lake_schema::{
    BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES, SILVER_LASTFM_LISTENS, SILVER_LASTFM_QUARANTINE,
    SILVER_LASTFM_USERS, TableDef,
};

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

async fn query(ctx: &SessionContext, sql: &Sql) -> Result<datafusion::prelude::DataFrame> {
    ctx.sql(sql.text).await.map_err(LakeError::query(sql.name))
}

async fn view(ctx: &SessionContext, name: &str, sql: &Sql) -> Result<()> {
    let df = query(ctx, sql).await?;
    ctx.register_table(name, df.into_view())
        .map_err(LakeError::query(sql.name))?;
    Ok(())
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(LakeError::query(sql))?
        .collect()
        .await
        .map_err(LakeError::query(sql))?;
    let first = batches.first().map(|b| int64_column(b, 0)).transpose();
    let first = first.map_err(|e| LakeError::query(sql)(e.into()))?;
    Ok(first.filter(|a| !a.is_empty()).map_or(0, |a| a.value(0)) as u64)
}

pub async fn run(run: Arc<Run>) -> Result<Summary> {
    let ctx = session();
    functions::register(&ctx);
    let lake = &run.lake;
    let mut summary = Summary::default();
    for def in [&BRONZE_LASTFM_PLAYS, &BRONZE_LASTFM_PROFILES] {
        let version = lake.register(&ctx, def).await?;
        if version.is_none() {
            tracing::warn!(
                "{} does not exist yet (run bronze first): reading it as empty",
                def.qualified_name()
            );
        }
        summary.inputs.push(Input {
            name: def.qualified_name(),
            version,
        });
    }
    let plays_in = count(&ctx, "SELECT count(*) FROM bronze.lastfm_plays").await?;
    let profiles_in = count(&ctx, "SELECT count(*) FROM bronze.lastfm_profiles").await?;

    view(&ctx, "lastfm_plays_checked", &sql!("lastfm_plays_checked")).await?;
    view(
        &ctx,
        "lastfm_profiles_checked",
        &sql!("lastfm_profiles_checked"),
    )
    .await?;

    let write = |def: &'static TableDef, df| {
        let ctx = &ctx;
        let run = &run;
        async move {
            lake.write(ctx, def, df, WriteMode::Overwrite, &run.id)
                .await
        }
    };
    let listens = write(
        &SILVER_LASTFM_LISTENS,
        query(&ctx, &sql!("lastfm_listens")).await?,
    )
    .await?;
    let users = write(
        &SILVER_LASTFM_USERS,
        query(&ctx, &sql!("lastfm_users")).await?,
    )
    .await?;
    let rejects = query(&ctx, &sql!("lastfm_quarantine"))
        .await?
        .with_column("run_id", lit(run.id.as_str()))
        .and_then(|df| {
            df.with_column(
                "quarantined_at",
                lit(ScalarValue::TimestampMicrosecond(
                    Some(run.started_micros()),
                    Some("UTC".into()),
                )),
            )
        })
        .map_err(LakeError::query("jobs/silver/sql/lastfm_quarantine.sql"))?;
    let quarantine = write(&SILVER_LASTFM_QUARANTINE, rejects).await?;

    // reconcile: every bronze play is a listen, a quarantined row or a duplicate
    lake.register(&ctx, &SILVER_LASTFM_QUARANTINE).await?;
    let (plays_rejected, profiles_rejected) = rejected_by_table(&ctx).await?;
    let duplicates = plays_in.saturating_sub(listens.rows + plays_rejected);
    let user_duplicates = profiles_in.saturating_sub(users.rows + profiles_rejected);
    summary.rows_in = plays_in + profiles_in;
    summary.rows_out = listens.rows + users.rows;
    summary.rows_quarantined = quarantine.rows;
    summary.detail("duplicate_plays_dropped", duplicates);
    summary.detail("duplicate_profiles_dropped", user_duplicates);
    tracing::info!(
        plays_in,
        listens = listens.rows,
        rejected = plays_rejected,
        duplicates,
        "plays reconciled"
    );
    summary.outputs = vec![listens, users, quarantine];
    Ok(summary)
}

async fn rejected_by_table(ctx: &SessionContext) -> Result<(u64, u64)> {
    let sql = "SELECT table_name, count(*) FROM silver.lastfm_quarantine GROUP BY table_name";
    let batches = ctx
        .sql(sql)
        .await
        .map_err(LakeError::query(sql))?
        .collect()
        .await
        .map_err(LakeError::query(sql))?;
    let (mut plays, mut profiles) = (0, 0);
    let bad = |e: datafusion::arrow::error::ArrowError| LakeError::query(sql)(e.into());
    for b in batches {
        let (names, counts) = (
            text_column(&b, 0).map_err(bad)?,
            int64_column(&b, 1).map_err(bad)?,
        );
        for i in 0..b.num_rows() {
            match names.value(i) {
                "silver.lastfm_listens" => plays += counts.value(i) as u64,
                _ => profiles += counts.value(i) as u64,
            }
        }
    }
    Ok((plays, profiles))
}
