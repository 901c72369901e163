//! What the `lake` tool does, as functions its `main.rs` and tests call: SQL over the catalogue
//! with time travel (`silver.lastfm_listens@v3`, `gold.lastfm_top_songs@2026-11-22T01:00:00Z`;
//! the tables are resolved by `lake_runtime::catalog`), errors that name close table names, and
//! the `tables` / `describe` listings.

use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};
use lake_runtime::Lake;
use lake_schema::{CATALOGUE, Layer};

/// Quotes `layer.table@<time>` into `layer."table@<time>"`, a name the SQL parser accepts and
/// the catalogue resolves. Only unquoted names are touched, never a string literal, a quoted
/// name or a comment. (`@v3` parses as it is: `@` may be part of a name.)
pub fn quote_time_travel(sql: &str) -> String {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        // the parser will say what is wrong
        return sql.to_string();
    };
    let stamp = |c: u8| c.is_ascii_alphanumeric() || b":-+._".contains(&c);
    let (mut out, mut last) = (String::with_capacity(sql.len() + 8), 0);
    for t in tokens {
        let Token::Word(word) = &t.token else {
            continue;
        };
        let Some(at) = word.value.find('@').filter(|at| *at > 0) else {
            continue;
        };
        if word.quote_style.is_some() {
            continue;
        }
        let Some(start) = byte_offset(sql, t.span.start).filter(|s| *s >= last) else {
            continue;
        };
        let mut end = start + at + 1;
        while end < sql.len() && stamp(sql.as_bytes()[end]) {
            end += 1;
        }
        out.push_str(&sql[last..start]);
        // an unquoted name is lower case to SQL; the time after '@' keeps its case
        let name = sql[start..start + at].to_lowercase();
        out.push_str(&format!("\"{name}{}\"", &sql[start + at..end]));
        last = end;
    }
    out.push_str(&sql[last..]);
    out
}

/// The byte offset of a tokenizer location (1-based line and character column) in `text`.
fn byte_offset(text: &str, at: Location) -> Option<usize> {
    let line_start = if at.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(at.line as usize - 2)?.0 + 1
    };
    let column = usize::try_from(at.column.checked_sub(1)?).ok()?;
    let line = &text[line_start..];
    let within = line
        .char_indices()
        .nth(column)
        .map_or(line.len(), |(i, _)| i);
    Some(line_start + within)
}

/// Catalogue names close to `unknown` (what a user probably meant), closest first.
pub fn close_names(unknown: &str) -> Vec<String> {
    let unknown = unknown.to_ascii_lowercase();
    let unknown = unknown.strip_prefix("datafusion.").unwrap_or(&unknown);
    // a layer the user named is taken at its word: names of other layers come after
    let (layer, table) = match unknown.split_once('.') {
        Some((layer, table)) if Layer::ALL.iter().any(|l| l.as_str() == layer) => {
            (Some(layer), table)
        }
        _ => (None, unknown),
    };
    let mut scored: Vec<(usize, String)> = CATALOGUE
        .iter()
        .map(|d| {
            let q = d.qualified_name();
            let other_layer = layer.is_some_and(|l| l != d.layer.as_str());
            let distance = edit_distance(unknown, &q)
                .min(edit_distance(table, &d.sql_name()) + 3 * usize::from(other_layer))
                .min(edit_distance(table, d.name) + 1 + 3 * usize::from(other_layer));
            (distance, q)
        })
        .filter(|(d, q)| *d <= 3.max(q.len() / 3))
        .collect();
    scored.sort();
    // the closest, and those as close
    let best = scored.first().map_or(0, |(d, _)| *d);
    scored
        .into_iter()
        .take_while(|(d, _)| *d == best)
        .take(3)
        .map(|(_, q)| q)
        .collect()
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
            "{text}\nthe query needs more memory than --memory-limit (or memory_limit in lake.toml; \
             1GiB unless set) allows, and this part of it cannot spill to disk: raise the limit \
             (`none` lifts it) or narrow the query"
        );
    }
    text
}

/// Parses `text` into statements and runs each, handing each result to `out`; stops at the
/// first error, which is returned in words (see [`explain`]).
pub async fn run_sql(
    ctx: &SessionContext,
    text: &str,
    mut out: impl FnMut(Vec<RecordBatch>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let text = quote_time_travel(text);
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
        // a table that cannot be read (an earlier version of the jobs wrote it) has no count
        let count = match &table {
            Some(_) => match ctx.table(def.qualified_name()).await {
                Ok(df) => df.count().await.ok().map(|n| n as i64),
                Err(_) => None,
            },
            None => None,
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
    fn a_time_after_a_table_name_is_quoted_and_nothing_else_is_touched() {
        assert_eq!(
            quote_time_travel(
                "SELECT * FROM gold.lastfm_top_songs@v3 JOIN silver.lastfm_users@2026-11-22 USING (x)"
            ),
            r#"SELECT * FROM gold."lastfm_top_songs@v3" JOIN silver."lastfm_users@2026-11-22" USING (x)"#
        );
        assert_eq!(
            quote_time_travel("SELECT count(*)\nFROM silver.LASTFM_LISTENS@2026-11-22T01:00:00Z;"),
            "SELECT count(*)\nFROM silver.\"lastfm_listens@2026-11-22T01:00:00Z\";"
        );
        for untouched in [
            "SELECT 'silver.lastfm_listens@2026-11-22' AS s, 'a@b.c' AS mail",
            r#"SELECT * FROM silver."lastfm_listens@v1""#,
            "SELECT 1 -- silver.lastfm_listens@2026-11-22\n",
            "SELECT /* x@2026-01-01 */ 1",
            "SELECT 'unterminated",
        ] {
            assert_eq!(quote_time_travel(untouched), untouched);
        }
    }

    #[test]
    fn an_unknown_table_is_answered_with_the_closest_names() {
        assert_eq!(
            close_names("silver.lastfm_listen")[0],
            "silver.lastfm_listens"
        );
        let offered = close_names("datafusion.gold.top_songs");
        for source in ["lastfm", "sparkify", "eventsim"] {
            let name = format!("gold.{source}_top_songs");
            assert!(offered.contains(&name), "{name} not in {offered:?}");
        }
        assert!(close_names("nothing_like_it_at_all").is_empty());
    }
}
