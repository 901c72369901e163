//! What the `lake` tool does, as functions its `main.rs` and tests call: SQL over the catalogue
//! with time travel (`silver.lastfm_listens@v3`, `gold.lastfm_top_songs@2026-11-22T01:00:00Z`),
//! errors that name close table names, and the `tables` / `describe` listings.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use lake_runtime::{AsOf, Lake, LakeError};
use lake_schema::{CATALOGUE, TableDef};

/// A table read as of a past version or time, and the name the rewritten SQL uses for it.
#[derive(Debug)]
pub struct PastTable {
    pub def: &'static TableDef,
    pub as_of: AsOf,
    /// Quoted table name inside the table's schema, e.g. `lastfm_listens@v3`.
    pub name: String,
}

/// Rewrites `layer.table@v3` and `layer.table@<RFC 3339 time or YYYY-MM-DD>` into a quoted name
/// (`layer."table@v3"`) the SQL parser accepts, and lists the past tables to register.
pub fn time_travel(sql: &str) -> Result<(String, Vec<PastTable>), String> {
    let mut out = String::with_capacity(sql.len());
    let mut past = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut last = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let stamp = |c: u8| c.is_ascii_alphanumeric() || b":-+._".contains(&c);
    while i < bytes.len() {
        if bytes[i] != b'@' {
            i += 1;
            continue;
        }
        // the qualified name before '@'
        let mut start = i;
        while start > 0 && (ident(bytes[start - 1]) || bytes[start - 1] == b'.') {
            start -= 1;
        }
        let mut end = i + 1;
        while end < bytes.len() && stamp(bytes[end]) {
            end += 1;
        }
        let (name, when) = (&sql[start..i], &sql[i + 1..end]);
        let Some(def) = CATALOGUE
            .iter()
            .copied()
            .find(|d| d.qualified_name() == name)
        else {
            i += 1;
            continue;
        };
        let as_of = parse_as_of(when).ok_or_else(|| {
            format!(
                "'{name}@{when}': say a version as @v3, or a time as @2026-11-22T01:00:00Z or @2026-11-22"
            )
        })?;
        let quoted = format!("{}@{when}", def.sql_name());
        out.push_str(&sql[last..start]);
        out.push_str(&format!("{}.\"{quoted}\"", def.layer.as_str()));
        past.push(PastTable {
            def,
            as_of,
            name: quoted,
        });
        last = end;
        i = end;
    }
    out.push_str(&sql[last..]);
    Ok((out, past))
}

fn parse_as_of(when: &str) -> Option<AsOf> {
    if let Some(v) = when.strip_prefix('v') {
        return v.parse().ok().map(AsOf::Version);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(when) {
        return Some(AsOf::Time(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(when, "%Y-%m-%d").ok()?;
    Some(AsOf::Time(day.and_hms_opt(0, 0, 0)?.and_utc()))
}

/// Catalogue names close to `unknown` (what a user probably meant), closest first.
pub fn close_names(unknown: &str) -> Vec<String> {
    let unknown = unknown.to_ascii_lowercase();
    let unknown = unknown.strip_prefix("datafusion.").unwrap_or(&unknown);
    let mut scored: Vec<(usize, String)> = CATALOGUE
        .iter()
        .map(|d| {
            let q = d.qualified_name();
            let distance = edit_distance(unknown, &q)
                .min(edit_distance(unknown, &d.sql_name()))
                .min(edit_distance(unknown, d.name) + 1);
            (distance, q)
        })
        .filter(|(d, q)| *d <= 3.max(q.len() / 3))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, q)| q).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cost = usize::from(ca != b[j]);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The error of a statement in words a user can act on.
pub fn explain(e: &DataFusionError) -> String {
    let text = e.to_string();
    if let Some(rest) = text.split("table '").nth(1)
        && let Some(name) = rest.split('\'').next()
        && text.contains("not found")
    {
        let name = name.strip_prefix("datafusion.").unwrap_or(name);
        let close = close_names(name);
        let hint = if close.is_empty() {
            "`lake tables` lists every table".to_string()
        } else {
            format!("did you mean {}?", close.join(", "))
        };
        return format!("no table {name}: {hint}");
    }
    if text.contains("Resources exhausted") {
        return format!(
            "{text}\nthe query needs more memory than --memory-limit (or memory_limit in lake.toml) allows, \
             and this part of it cannot spill to disk: raise the limit or narrow the query"
        );
    }
    text
}

/// A session with every table of the catalogue registered under its qualified name. A table
/// that cannot be read (written by an earlier version of the jobs, say) is left out with a
/// warning, so that the others can still be queried.
pub async fn open(lake: &Lake, ctx: &SessionContext) -> Result<(), LakeError> {
    for def in CATALOGUE {
        match lake.register(ctx, def).await {
            Ok(_) => {}
            Err(e @ (LakeError::Delta { .. } | LakeError::Config { .. })) => {
                eprintln!("warning: {e}")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Parses `text` into statements and runs each, handing each result to `out`; stops at the
/// first error, which is returned in words (see [`explain`]).
pub async fn run_sql(
    lake: &Lake,
    ctx: &SessionContext,
    text: &str,
    mut out: impl FnMut(Vec<RecordBatch>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (text, past) = time_travel(text).map_err(anyhow::Error::msg)?;
    for p in &past {
        let reference = TableReference::partial(p.def.layer.as_str(), p.name.as_str());
        lake.register_as_of(ctx, p.def, &p.as_of, reference).await?;
    }
    let statements = DFParser::parse_sql(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await;
        let batches = match plan {
            Ok(plan) => match ctx.execute_logical_plan(plan).await {
                Ok(df) => df.collect().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
        .map_err(|e| anyhow::anyhow!("{}", explain(&e)))?;
        out(batches)?;
    }
    Ok(())
}

/// `lake tables`: every table of the catalogue with its location, version, rows and last commit.
pub async fn tables(lake: &Lake, ctx: &SessionContext) -> anyhow::Result<RecordBatch> {
    let (mut names, mut locations, mut versions, mut rows, mut commits, mut runs) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for def in CATALOGUE {
        names.push(def.qualified_name());
        locations.push(lake.table_url(def)?.to_string());
        let table = lake.table(def).await?;
        versions.push(table.as_ref().and_then(|t| t.version()).map(|v| v as i64));
        let (mut at, mut run) = (None, None);
        if let Some(t) = &table {
            use futures::StreamExt;
            if let Some(Ok(info)) = t.history(Some(1)).next().await {
                at = info
                    .timestamp
                    .and_then(DateTime::from_timestamp_millis)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                run = info
                    .info
                    .get("lake.run_id")
                    .and_then(|v| v.as_str())
                    .map(String::from);
            }
        }
        commits.push(at);
        runs.push(run);
        let count = if table.is_some() {
            let sql = format!("SELECT count(*) FROM {}", def.qualified_name());
            let batches = ctx.sql(&sql).await?.collect().await?;
            batches
                .first()
                .and_then(|b| lake_runtime::int64_column(b, 0).ok())
                .filter(|a| !a.is_empty())
                .map(|a| a.value(0))
        } else {
            None
        };
        rows.push(count);
    }
    let text = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let schema = Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("version", DataType::Int64, true),
        Field::new("rows", DataType::Int64, true),
        Field::new("last_commit", DataType::Utf8, true),
        Field::new("last_run", DataType::Utf8, true),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(locations)),
            Arc::new(Int64Array::from(versions)),
            Arc::new(Int64Array::from(rows)),
            text(commits),
            text(runs),
        ],
    )?)
}

/// `lake describe TABLE`: the catalogue's description, location and partitions, then the
/// columns with their types and meaning.
pub fn describe(lake: &Lake, name: &str) -> anyhow::Result<(String, RecordBatch)> {
    let Some(def) = lake_schema::by_qualified_name(name) else {
        let close = close_names(name);
        anyhow::bail!(
            "no table {name} in the catalogue{}",
            if close.is_empty() {
                "; `lake tables` lists them".to_string()
            } else {
                format!(": did you mean {}?", close.join(", "))
            }
        );
    };
    let header = format!(
        "{}\n{}\nlocation: {}\npartitioned by: {}\n",
        def.qualified_name(),
        def.doc.split_whitespace().collect::<Vec<_>>().join(" "),
        lake.table_url(def)?,
        if def.partition_by.is_empty() {
            "none".to_string()
        } else {
            def.partition_by.join(", ")
        }
    );
    let schema = Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("nullable", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
    ]);
    let col = |f: &dyn Fn(&lake_schema::Column) -> String| {
        Arc::new(StringArray::from_iter_values(def.columns.iter().map(f))) as ArrayRef
    };
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            col(&|c| c.name.to_string()),
            col(&|c| c.ty.sql_name().to_string()),
            col(&|c| if c.nullable { "yes" } else { "no" }.to_string()),
            col(&|c| c.doc.to_string()),
        ],
    )?;
    Ok((header, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_or_a_time_after_a_table_name_reads_the_table_as_it_was() {
        let (sql, past) = time_travel(
            "SELECT * FROM gold.lastfm_top_songs@v3 JOIN silver.lastfm_users@2026-11-22 USING (x)",
        )
        .unwrap_or_default();
        assert_eq!(
            sql,
            r#"SELECT * FROM gold."lastfm_top_songs@v3" JOIN silver."lastfm_users@2026-11-22" USING (x)"#
        );
        assert_eq!(past[0].as_of, AsOf::Version(3));
        assert_eq!(past[0].name, "lastfm_top_songs@v3");
        assert!(
            matches!(past[1].as_of, AsOf::Time(t) if t.to_rfc3339() == "2026-11-22T00:00:00+00:00")
        );
        let (plain, none) = time_travel("SELECT 'a@b.c' AS mail").unwrap_or_default();
        assert_eq!((plain.as_str(), none.len()), ("SELECT 'a@b.c' AS mail", 0));
        assert!(time_travel("SELECT * FROM gold.lastfm_top_songs@yesterday").is_err());
    }

    #[test]
    fn an_unknown_table_is_answered_with_the_closest_names() {
        assert_eq!(
            close_names("silver.lastfm_listen")[0],
            "silver.lastfm_listens"
        );
        assert_eq!(
            close_names("datafusion.gold.top_songs")[0],
            "gold.lastfm_top_songs"
        );
        assert!(close_names("nothing_like_it_at_all").is_empty());
    }
}
