//! The lake's report: one self-contained HTML file (`<lake>/gold/report/index.html`) with the
//! state of the lake and a panel per question, charts as inline SVG ([`svg`]). Nothing is
//! fetched from anywhere: it opens from S3, a mail attachment or a laptop offline. gold writes
//! it at the end of every run; `lake report` writes it on demand.
//!
//! Each panel is declared ([`PANELS`]): a SQL file in `sql/` whose first column labels the
//! categories and whose other columns are the series, and how to draw it. A panel whose tables
//! are empty (a source not landed yet) is left out.

pub mod svg;

use std::fmt::Write as _;

use bytes::Bytes;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use lake_runtime::{Lake, LakeError, Result, Sql, sql};
use lake_schema::{CATALOGUE, Layer, TableDef};

use crate::svg::{Frame, Series};

/// Where gold puts the report, under the lake root.
pub const REPORT_FOLDER: &str = "gold/report";
pub const REPORT_FILE: &str = "index.html";

/// How a panel's rows are drawn.
#[derive(Debug, Clone, Copy)]
pub enum Draw {
    /// Vertical bars per category, grouped by series.
    Bars,
    /// Lines over ordered categories.
    Lines,
    /// Horizontal bars of a ranking (the first series).
    Ranking,
    /// Shares of a whole (the first series).
    Donut,
    /// Big numbers: one per column of the first row.
    Figures,
    /// The rows as a table.
    Table,
}

/// A panel of the report.
#[derive(Debug)]
pub struct Panel {
    /// The section it belongs to (a source, or the lake).
    pub section: &'static str,
    pub title: &'static str,
    /// The horizontal axis, with its unit.
    pub x: &'static str,
    /// The vertical axis, with its unit.
    pub y: &'static str,
    pub query: Query,
    pub draw: Draw,
}

/// Where a panel's rows come from.
#[derive(Debug)]
pub enum Query {
    /// A SQL file of `sql/`.
    File(Sql),
    /// SQL written from the catalogue, over every source's tables of a kind.
    Catalogue(fn() -> String),
}

const fn panel(
    section: &'static str,
    title: &'static str,
    (x, y): (&'static str, &'static str),
    query: Query,
    draw: Draw,
) -> Panel {
    Panel {
        section,
        title,
        x,
        y,
        query,
        draw,
    }
}

/// A panel's SQL file, `lake-report/sql/<name>.sql`.
macro_rules! file {
    ($name:literal) => {
        Query::File(sql!("lake-report", $name))
    };
}

pub const PANELS: &[Panel] = &[
    panel(
        "The lake",
        "Landed per source",
        ("", ""),
        Query::Catalogue(landed_sql),
        Draw::Table,
    ),
    panel(
        "The lake",
        "Rows quarantined, by reason",
        ("", ""),
        Query::Catalogue(quarantined_sql),
        Draw::Table,
    ),
    panel(
        "The lake",
        "Newest data of each source",
        ("", ""),
        file!("lake_newest"),
        Draw::Table,
    ),
    panel(
        "The lake",
        "Last run of each job",
        ("", ""),
        file!("lake_runs"),
        Draw::Table,
    ),
    panel(
        "Last.fm",
        "Listening sessions by length",
        ("plays in the session", "sessions"),
        file!("lastfm_session_lengths"),
        Draw::Bars,
    ),
    panel(
        "Last.fm",
        "Top songs of the 50 longest sessions",
        ("plays in those sessions", "song — artist"),
        file!("lastfm_top_songs"),
        Draw::Ranking,
    ),
    panel(
        "Sparkify",
        "Plays by hour of day, free and paid users",
        ("hour of day (UTC)", "plays"),
        file!("sparkify_plays_by_hour"),
        Draw::Bars,
    ),
    panel(
        "Deezer",
        "Top 10 of the three largest countries, latest chart (7 days)",
        ("streams in 7 days", "country #rank sng_id"),
        file!("deezer_top_countries"),
        Draw::Ranking,
    ),
    panel(
        "eventsim",
        "Songs played per day",
        ("day (UTC)", "songs played"),
        file!("eventsim_streams_daily"),
        Draw::Lines,
    ),
    panel(
        "eventsim",
        "Songs played by hour: last day against the day before",
        ("hour of day (UTC)", "songs played"),
        file!("eventsim_today_vs_yesterday"),
        Draw::Lines,
    ),
    panel(
        "eventsim",
        "Users",
        ("", ""),
        file!("eventsim_users"),
        Draw::Figures,
    ),
    panel(
        "eventsim",
        "Top songs",
        ("songs played", "song — artist"),
        file!("eventsim_top_songs"),
        Draw::Ranking,
    ),
    panel(
        "eventsim",
        "Top artists",
        ("songs played", "artist"),
        file!("eventsim_top_artists"),
        Draw::Ranking,
    ),
    panel(
        "eventsim",
        "Songs played by state",
        ("US state", "songs played"),
        file!("eventsim_states"),
        Draw::Bars,
    ),
    panel(
        "eventsim",
        "Users by gender",
        ("", ""),
        file!("eventsim_gender"),
        Draw::Donut,
    ),
    panel(
        "eventsim",
        "Level by gender",
        ("gender", "users"),
        file!("eventsim_level_by_gender"),
        Draw::Bars,
    ),
    panel(
        "eventsim",
        "Upgrades against downgrades",
        ("day (UTC)", "status changes"),
        file!("eventsim_up_down"),
        Draw::Lines,
    ),
    panel(
        "eventsim",
        "Logins: succeeded and failed",
        ("day (UTC)", "login attempts"),
        file!("eventsim_logins"),
        Draw::Bars,
    ),
];

/// Whether `def` is a quarantine table.
fn is_quarantine(def: &TableDef) -> bool {
    def.name == "quarantine"
}

/// `SELECT <select(def)> FROM <def>` for each table `pick` keeps, joined by UNION ALL.
fn union_of(pick: impl Fn(&TableDef) -> bool, select: impl Fn(&TableDef) -> String) -> String {
    CATALOGUE
        .iter()
        .filter(|d| pick(d))
        .map(|d| format!("SELECT {} FROM {}", select(d), d.qualified_name()))
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n")
}

fn source(def: &TableDef) -> &'static str {
    def.source.unwrap_or_default()
}

/// Per source: the objects landed and their bytes, the rows in bronze, the rows in quarantine
/// (bronze and silver), and when it last landed something.
fn landed_sql() -> String {
    let rows = union_of(
        |d| d.layer == Layer::Bronze && !is_quarantine(d),
        |d| format!("'{}' AS source, count(*) AS n", source(d)),
    );
    let rejected = union_of(
        |d| matches!(d.layer, Layer::Bronze | Layer::Silver) && is_quarantine(d),
        |d| format!("'{}' AS source, count(*) AS n", source(d)),
    );
    format!(
        "WITH landed AS ({rows}), rejected AS ({rejected}), \
         objects AS (SELECT source, count(*) AS objects, sum(size) AS bytes, max(landed_at) AS last_landed \
           FROM meta.landed_objects GROUP BY source), \
         landed_rows AS (SELECT source, sum(n) AS n FROM landed GROUP BY source), \
         rejected_rows AS (SELECT source, sum(n) AS n FROM rejected GROUP BY source) \
         SELECT o.source, o.objects, o.bytes, coalesce(l.n, 0) AS rows_landed, \
           coalesce(r.n, 0) AS rows_quarantined, o.last_landed \
         FROM objects o \
         LEFT JOIN landed_rows l ON l.source = o.source \
         LEFT JOIN rejected_rows r ON r.source = o.source \
         ORDER BY o.source"
    )
}

/// The 20 commonest reasons rows were quarantined, per layer and source; the values a reason
/// quotes ('…') are left out so that the same rule counts once.
fn quarantined_sql() -> String {
    let reasons = union_of(
        |d| matches!(d.layer, Layer::Bronze | Layer::Silver) && is_quarantine(d),
        |d| {
            format!(
                "'{}' AS layer, '{}' AS source, regexp_replace(reason, '''[^'']*''', '…', 'g') AS reason",
                d.layer.as_str(),
                source(d)
            )
        },
    );
    format!(
        "SELECT layer, source, reason, count(*) AS rows FROM ({reasons}) \
         GROUP BY layer, source, reason ORDER BY rows DESC, layer, source, reason LIMIT 20"
    )
}

/// A query's result as text cells and numbers, column by column.
struct Table {
    columns: Vec<String>,
    /// Each column's cells as text.
    text: Vec<Vec<String>>,
    /// Each column's cells as numbers (0 where not a number).
    numbers: Vec<Vec<f64>>,
}

impl Table {
    fn from_batches(
        batches: &[RecordBatch],
    ) -> std::result::Result<Self, datafusion::arrow::error::ArrowError> {
        let Some(first) = batches.first() else {
            return Ok(Self {
                columns: Vec::new(),
                text: Vec::new(),
                numbers: Vec::new(),
            });
        };
        let columns: Vec<String> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let (mut text, mut numbers) = (
            vec![Vec::new(); columns.len()],
            vec![Vec::new(); columns.len()],
        );
        let options = FormatOptions::default().with_null("");
        for b in batches {
            for (i, column) in b.columns().iter().enumerate() {
                let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
                let floats = cast(column, &DataType::Float64).ok();
                for r in 0..b.num_rows() {
                    text[i].push(formatter.value(r).to_string());
                    let value = floats
                        .as_ref()
                        .and_then(|f| {
                            f.as_any()
                                .downcast_ref::<datafusion::arrow::array::Float64Array>()
                        })
                        .filter(|f| f.is_valid(r))
                        .map_or(0.0, |f| f.value(r));
                    numbers[i].push(value);
                }
            }
        }
        Ok(Self {
            columns,
            text,
            numbers,
        })
    }

    fn rows(&self) -> usize {
        self.text.first().map_or(0, Vec::len)
    }

    fn series(&self) -> Vec<Series> {
        self.columns
            .iter()
            .zip(&self.numbers)
            .skip(1)
            .map(|(name, values)| Series::new(name.clone(), values.clone()))
            .collect()
    }
}

/// The report of the lake `ctx` reads (a session with the lake's catalogue attached).
pub async fn render(ctx: &SessionContext, generated: &str) -> Result<String> {
    let mut html = String::from(HEAD);
    let _ = write!(
        html,
        "<h1>Music-streaming lake</h1><p class=\"meta\">Generated {}</p>",
        svg::escape(generated)
    );
    let mut section = "";
    for panel in PANELS {
        let (batches, name) = match &panel.query {
            Query::File(sql) => (sql.plan(ctx).await?.collect().await, sql.path),
            Query::Catalogue(text) => (
                async { ctx.sql(&text()).await?.collect().await }.await,
                panel.title,
            ),
        };
        let batches = batches.map_err(LakeError::query(name))?;
        let table = Table::from_batches(&batches).map_err(|e| LakeError::query(name)(e.into()))?;
        let empty = table.rows() == 0
            || (table.numbers.iter().skip(1).flatten().all(|v| *v == 0.0)
                && !matches!(panel.draw, Draw::Table));
        if empty {
            continue;
        }
        if panel.section != section {
            if !section.is_empty() {
                html.push_str("</section>");
            }
            let _ = write!(html, "<section><h2>{}</h2>", svg::escape(panel.section));
            section = panel.section;
        }
        let _ = write!(html, "<figure>{}</figure>", draw(panel, &table));
    }
    if !section.is_empty() {
        html.push_str("</section>");
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

fn draw(panel: &Panel, table: &Table) -> String {
    let labels = table.text.first().cloned().unwrap_or_default();
    let frame = Frame {
        title: panel.title,
        x: panel.x,
        y: panel.y,
    };
    let first = table.numbers.get(1).cloned().unwrap_or_default();
    match panel.draw {
        Draw::Bars => svg::bars(&frame, &labels, &table.series()),
        Draw::Lines => svg::lines(&frame, &labels, &table.series()),
        Draw::Ranking => svg::ranking(&frame, &labels, &first),
        Draw::Donut => svg::donut(
            panel.title,
            &labels.into_iter().zip(first).collect::<Vec<_>>(),
        ),
        Draw::Figures => figures(panel.title, table),
        Draw::Table => html_table(panel.title, table),
    }
}

fn figures(title: &str, table: &Table) -> String {
    let mut html = format!("<div class=\"figures\"><h3>{}</h3>", svg::escape(title));
    for (name, cells) in table.columns.iter().zip(&table.text) {
        let _ = write!(
            html,
            "<div class=\"figure\"><span class=\"number\">{}</span><span class=\"label\">{}</span></div>",
            svg::escape(cells.first().map_or("", String::as_str)),
            svg::escape(&name.replace('_', " "))
        );
    }
    html.push_str("</div>");
    html
}

fn html_table(title: &str, table: &Table) -> String {
    let mut html = format!("<table><caption>{}</caption><tr>", svg::escape(title));
    for c in &table.columns {
        let _ = write!(html, "<th>{}</th>", svg::escape(&c.replace('_', " ")));
    }
    html.push_str("</tr>");
    for r in 0..table.rows() {
        html.push_str("<tr>");
        for cells in &table.text {
            let _ = write!(html, "<td>{}</td>", svg::escape(&cells[r]));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// Renders the report of `lake` (read through `ctx`, a session with the lake's catalogue
/// attached) and writes it to `<lake>/gold/report/index.html`; its URL and the page.
pub async fn write(lake: &Lake, ctx: &SessionContext) -> Result<(String, String)> {
    let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let html = render(ctx, &generated).await?;
    let folder = lake.root().child(REPORT_FOLDER)?;
    let url = folder
        .put_file(REPORT_FILE, Bytes::from(html.clone()))
        .await?;
    Ok((url, html))
}

/// The page's head: inline styles only.
const HEAD: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Music-streaming lake</title><style>\
body{font-family:sans-serif;margin:24px;color:#222;background:#f6f6f6}\
h1{margin:0 0 4px}h2{border-bottom:2px solid #1f77b4;padding-bottom:4px}\
.meta{color:#666;margin-top:0}section{margin-bottom:32px}\
figure{display:inline-block;margin:8px;vertical-align:top;background:#fff;box-shadow:0 1px 3px #bbb}\
.chart text{font-family:sans-serif}.title{font-size:15px;font-weight:bold}.axis{font-size:12px;fill:#444}\
.tick{font-size:10px;fill:#333}.legend{font-size:12px}\
table{border-collapse:collapse;margin:8px;background:#fff}caption{font-weight:bold;text-align:left;padding:6px}\
th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}th{background:#eef}\
.figures{padding:12px 24px;min-width:300px}.figure{display:inline-block;margin:8px 24px 8px 0}\
.number{display:block;font-size:32px;font-weight:bold;color:#1f77b4}.label{color:#555}\
</style></head><body>";
