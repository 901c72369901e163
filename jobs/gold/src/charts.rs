//! Top-50 charts of a 7-day window: which dates a run charts ([`ChartDates`]), the chart SQL
//! (`sql/charts/top50.sql`, one definition) over each source's window of streams, the chart
//! tables, the text files of each chart date, and the record of what each date was charted from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, AsArray, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::functions::expr_fn::date_part;
use datafusion::logical_expr::cast;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use lake_runtime::progress::Progress;
use lake_runtime::{
    Days, LakeError, Month, Refresh, Result, SILVER_TXN, Scope, Sql, Summary, WriteMode, Written,
    conform, int64_column, register_view, sql,
};
use lake_schema::{Layer, TableDef};
use serde_json::json;

use crate::chart_files::ChartFiles;
use crate::sources::{Chart, ChartDates, Charts, Pick, Spans};
use crate::{Built, Changes, Gold, replaced_rows};

/// The chart SQL, the same for every source: the 50 songs with most streams per chart date and
/// key over `window_streams`.
pub const TOP50: Sql = sql!("charts/top50");

/// How many days a chart counts: the chart date and the six before it.
const WINDOW_DAYS: i64 = 7;

/// Chart rows in flight from the table's write to the text files.
const FILE_BATCHES: usize = 4;

/// A date to chart, with what its window holds.
#[derive(Debug, Clone)]
struct ChartDate {
    date: NaiveDate,
    /// The newest bronze batch among the window's logs (`Logs` dates only).
    window_batch: i64,
    present: Vec<NaiveDate>,
    missing: Vec<NaiveDate>,
}

impl Gold<'_> {
    /// Charts the dates this run must chart, table by table, each with its text files, then
    /// notes what each date was charted from.
    pub(crate) async fn charts(
        &self,
        charts: &Charts,
        progress: &Progress,
        summary: &mut Summary,
    ) -> Result<Built> {
        let (refresh, dates) = self.chart_dates(charts).await?;
        let mut written = Vec::new();
        let mut read = 0;
        let mut files = Vec::new();
        for chart in charts.tables {
            self.describe(chart.def, &refresh, summary);
            if let Some(mode) = refresh.write_mode() {
                let (table, rows, urls) = self
                    .chart(chart, &dates, charts.dates.spans(), mode, &refresh)
                    .await?;
                read += rows;
                written.push(table);
                files.extend(urls);
            }
            progress.inc(1);
        }
        if dates.is_empty() || refresh.write_mode().is_none() {
            return Ok(Built { written, read });
        }
        if let (ChartDates::Logs { log, .. }, Some(mode)) = (&charts.dates, refresh.write_mode()) {
            written.push(self.note_charted(log, &dates, mode, &refresh).await?);
        }
        let charted: Vec<_> = dates
            .iter()
            .map(|d| json!({"date": d.date.to_string(), "days_missing": days(&d.missing)}))
            .collect();
        summary.detail(
            &format!("{}_charts", self.source.name),
            json!({"dates": charted, "files": files}),
        );
        Ok(Built { written, read })
    }

    /// What this run charts, as a refresh of the chart tables, and the dates.
    async fn chart_dates(&self, charts: &Charts) -> Result<(Refresh, Vec<ChartDate>)> {
        let column = "chart_date";
        match &charts.dates {
            ChartDates::Weeks { weeks } => {
                let Some(first) = charts.tables.first() else {
                    return Ok((Refresh::UpToDate, Vec::new()));
                };
                let refresh = match self.scope {
                    Scope::Changed => self.changed_weeks(first.def).await?,
                    _ => match self.plan(first.def).await? {
                        Refresh::Days { days, .. } => Refresh::Days { days, column },
                        other => other,
                    },
                };
                let wanted = match &refresh {
                    Refresh::Full => self.weeks(weeks, (None, None)).await?,
                    Refresh::Days { days, .. } => match plays_of_weeks(days) {
                        None => Vec::new(),
                        Some(bounds) => self
                            .weeks(weeks, bounds)
                            .await?
                            .into_iter()
                            .filter(|d| in_ranges(days, *d))
                            .collect(),
                    },
                    _ => Vec::new(),
                };
                let dates = wanted
                    .into_iter()
                    .map(|date| ChartDate {
                        date,
                        window_batch: 0,
                        present: Vec::new(),
                        missing: Vec::new(),
                    })
                    .collect();
                Ok((refresh, dates))
            }
            ChartDates::Logs { days, log } => {
                let logs = self.log_days(days).await?;
                let all: Vec<ChartDate> = logs.keys().map(|d| window(&logs, *d)).collect();
                let dates: Vec<ChartDate> = match self.scope {
                    Scope::Full => all,
                    Scope::Range(from, to) => {
                        let range = Days::of_range(from, to);
                        all.into_iter()
                            .filter(|d| in_ranges(&range, d.date))
                            .collect()
                    }
                    Scope::Changed => {
                        let charted = self.charted(log).await?;
                        all.into_iter()
                            .filter(|d| charted.get(&d.date) != Some(&d.window_batch))
                            .collect()
                    }
                };
                let refresh = match (self.scope, dates.is_empty()) {
                    (Scope::Full, _) => Refresh::Full,
                    (_, true) => Refresh::UpToDate,
                    (_, false) => Refresh::Days {
                        days: Days::each(dates.iter().map(|d| d.date)),
                        column,
                    },
                };
                Ok((refresh, dates))
            }
        }
    }

    /// What a run over all changes does to the weekly charts `def`: nothing when no input
    /// changed since they were charted; the weeks (their Sundays) overlapping the months that
    /// changed, when every input that changed is partitioned by month and its log says which
    /// months (a new delivery of plays: the weeks it falls in) or was rewritten with the same
    /// rows (silver rebuilds the users with every delivery); all weeks again otherwise.
    async fn changed_weeks(&self, def: &TableDef) -> Result<Refresh> {
        Ok(match self.changes(def, |_| true).await? {
            Changes::Nothing => Refresh::UpToDate,
            Changes::Unknown => Refresh::Full,
            Changes::Months(months) => Refresh::Days {
                days: Days::each(months.into_iter().flat_map(sundays_over)),
                column: "chart_date",
            },
        })
    }

    /// The days with a log that silver has consumed, each with the newest batch of its logs:
    /// a log silver has not taken in yet is charted on a later run.
    async fn log_days(&self, days: &Sql) -> Result<BTreeMap<NaiveDate, i64>> {
        let mut through = i64::MAX;
        for def in self
            .source
            .inputs
            .iter()
            .filter(|d| d.layer == Layer::Silver)
        {
            let held = self.run.lake.txn_version(def, SILVER_TXN).await?;
            through = through.min(held.unwrap_or(-1));
        }
        let batches = days
            .plan(&self.ctx)
            .await?
            .collect()
            .await
            .map_err(LakeError::query(days.path))?;
        let err = |e: datafusion::arrow::error::ArrowError| LakeError::query(days.path)(e.into());
        let mut logs = BTreeMap::new();
        for b in &batches {
            let day = date_column(b, "day").map_err(err)?;
            let batch = int64_column(b, "batch").map_err(err)?;
            for i in 0..b.num_rows() {
                if let Some(d) = day.get(i).copied().flatten()
                    && batch.value(i) <= through
                {
                    logs.insert(d, batch.value(i));
                }
            }
        }
        Ok(logs)
    }

    /// The Sundays of the weeks with plays from `first` to `last` (`None`: no bound), as the
    /// query `sql` gives them.
    async fn weeks(
        &self,
        sql: &Sql,
        (first, last): (Option<NaiveDate>, Option<NaiveDate>),
    ) -> Result<Vec<NaiveDate>> {
        let batches = sql
            .plan(&self.ctx)
            .await?
            .with_param_values(day_bounds(first, last))
            .map_err(LakeError::query(sql.path))?
            .collect()
            .await
            .map_err(LakeError::query(sql.path))?;
        let mut dates = BTreeSet::new();
        for b in &batches {
            let days =
                date_column(b, "chart_date").map_err(|e| LakeError::query(sql.path)(e.into()))?;
            dates.extend(days.into_iter().flatten());
        }
        Ok(dates.into_iter().collect())
    }

    /// What each chart date was last charted from, as the log table says: date → window batch.
    async fn charted(&self, log: &TableDef) -> Result<BTreeMap<NaiveDate, i64>> {
        self.lake.register(&self.ctx, log).await?;
        let err = LakeError::query(log.qualified_name());
        let batches = self
            .ctx
            .table(log.qualified_name())
            .await
            .and_then(|df| df.select_columns(&["chart_date", "window_batch"]))
            .map_err(&err)?
            .collect()
            .await
            .map_err(&err)?;
        let mut charted = BTreeMap::new();
        for b in &batches {
            let bad = |e: datafusion::arrow::error::ArrowError| err(e.into());
            let dates = date_column(b, "chart_date").map_err(bad)?;
            let window = int64_column(b, "window_batch").map_err(bad)?;
            for (i, date) in dates.into_iter().enumerate() {
                if let Some(date) = date {
                    charted.insert(date, window.value(i));
                }
            }
        }
        Ok(charted)
    }

    /// Computes one chart table for the chart dates and writes it in one commit, with its text
    /// files when it has some; returns what was written, the window rows read and the files.
    /// Daily windows overlap, so each date is ranked over its own 7 days; weeks do not, so one
    /// query ranks them all.
    async fn chart(
        &self,
        chart: &Chart,
        dates: &[ChartDate],
        spans: Spans,
        mode: WriteMode,
        refresh: &Refresh,
    ) -> Result<(Written, u64, Vec<String>)> {
        let spans: Vec<(NaiveDate, NaiveDate)> = match spans {
            Spans::EachDate => dates
                .iter()
                .map(|d| (window_start(d.date), d.date))
                .collect(),
            Spans::AllAtOnce => {
                let first = dates.iter().map(|d| d.date).min();
                let last = dates.iter().map(|d| d.date).max();
                first
                    .zip(last)
                    .map(|(f, l)| (window_start(f), l))
                    .into_iter()
                    .collect()
            }
        };
        let mut ranked: Option<DataFrame> = None;
        let mut read = 0;
        for (first, last) in spans {
            let (top, rows) = self.rank(chart, first, last).await?;
            read += rows;
            ranked = Some(match ranked {
                Some(all) => all.union(top).map_err(LakeError::query(TOP50.path))?,
                None => top,
            });
        }
        let ranked = match ranked {
            Some(ranked) => ranked,
            None => self
                .ctx
                .read_batch(RecordBatch::new_empty(chart.def.arrow_schema()))
                .map_err(LakeError::query(TOP50.path))?,
        };
        let (written, files) = match chart.file {
            Some(prefix) => {
                let dates: Vec<NaiveDate> = dates.iter().map(|d| d.date).collect();
                self.write_with_files(chart, prefix, ranked, &dates, mode, refresh)
                    .await?
            }
            None => (
                self.write(chart.def, ranked, mode, refresh).await?,
                Vec::new(),
            ),
        };
        self.lake.register(&self.ctx, chart.def).await?;
        Ok((written, read, files))
    }

    /// Writes the chart rows `ranked` to the table in one commit and, from the same rows on
    /// their way (sorted by date, key and rank), the text file of each of `dates`; the files
    /// become visible once the commit landed. Returns the files' URLs.
    async fn write_with_files(
        &self,
        chart: &Chart,
        prefix: &'static str,
        ranked: DataFrame,
        dates: &[NaiveDate],
        mode: WriteMode,
        refresh: &Refresh,
    ) -> Result<(Written, Vec<String>)> {
        let def = chart.def;
        let err = LakeError::query(def.qualified_name());
        let in_file_order = vec![
            col("chart_date").sort(true, false),
            col(chart.key).sort(true, false),
            col("rank").sort(true, false),
        ];
        let rows = conform(replaced_rows(def, ranked, refresh)?, def)?
            .sort(in_file_order)
            .map_err(&err)?
            .execute_stream()
            .await
            .map_err(&err)?;
        let schema = rows.schema();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(FILE_BATCHES);
        let tapped = rows.then(move |batch| {
            let tx = tx.clone();
            async move {
                let b = batch?;
                // the files stopped (they say why): the write stops too, committing nothing
                tx.send(b.clone()).await.map_err(|_| {
                    DataFusionError::Execution("the chart's text files stopped".into())
                })?;
                Ok(b)
            }
        });
        let tapped = Box::pin(RecordBatchStreamAdapter::new(schema, tapped));
        let folder = self
            .run
            .lake
            .root()
            .child(&format!("gold/{}/charts", self.source.name))?;
        let staging = std::env::temp_dir().join(format!("lake-{}-{}", self.run.id, def.name));
        let mut files = ChartFiles::new(folder, staging, prefix, chart);
        let fill = {
            let files = &mut files;
            async move {
                while let Some(batch) = rx.recv().await {
                    files.add(&batch)?;
                }
                Ok::<(), LakeError>(())
            }
        };
        let commit = self.commit(refresh);
        let write = self.lake.write_rows(&self.ctx, def, tapped, mode, &commit);
        match tokio::join!(write, fill) {
            (Ok(written), Ok(())) => Ok((written, files.finish(dates).await?)),
            // the files' own error first: the write then stopped because of it
            (_, Err(e)) | (Err(e), Ok(())) => {
                files.abort();
                Err(e)
            }
        }
    }

    /// The plan of the charts of the window query bound to `first`..`last`, ranked by `TOP50`,
    /// in the table's columns, and the rows of the window. Counting them runs the window query
    /// once more, so they are counted only for a source without sessions, whose rows in they
    /// are; a source with sessions reads the same plays for both, and its rows in are the plays
    /// (the Last.fm weekly country chart's count was 6.4 s of gold's 22.4 s at 1×).
    async fn rank(
        &self,
        chart: &Chart,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<(DataFrame, u64)> {
        let err = LakeError::query(chart.window.path);
        let window = chart
            .window
            .plan(&self.ctx)
            .await?
            .with_param_values(day_bounds(Some(first), Some(last)))
            .map_err(&err)?;
        let read = match self.source.sessions {
            None => window.clone().count().await.map_err(&err)? as u64,
            Some(_) => 0,
        };
        register_view(&self.ctx, "window_streams", window)?;
        let part = |p: &str| cast(date_part(lit(p), col("chart_date")), DataType::Int32);
        // the chart's own planner settings; its views are the session's (one catalogue).
        // The bounded selection (PartitionedTopKExec) has no form Ballista 55 can send to its
        // executors, so a cluster sorts.
        let mut state = self.ctx.state();
        state
            .config_mut()
            .options_mut()
            .optimizer
            .enable_window_topn = chart.pick == Pick::Bounded && !self.on_cluster;
        let top = TOP50
            .plan(&SessionContext::new_with_state(state))
            .await?
            .select(vec![
                col("chart_date"),
                col("key").alias(chart.key),
                col("rank"),
                col("song").alias(chart.song),
                col("streams"),
                part("year").alias("year"),
                part("month").alias("month"),
            ])
            .map_err(LakeError::query(TOP50.path))?;
        Ok((top, read))
    }

    /// Records, in the log table, what each chart date was charted from (written as the chart
    /// tables were).
    async fn note_charted(
        &self,
        log: &TableDef,
        dates: &[ChartDate],
        mode: WriteMode,
        refresh: &Refresh,
    ) -> Result<Written> {
        let err = LakeError::query(log.qualified_name());
        let n = dates.len();
        let text = |f: &dyn Fn(&ChartDate) -> String| {
            Arc::new(StringArray::from_iter_values(dates.iter().map(f))) as ArrayRef
        };
        let batch = RecordBatch::try_new(
            log.arrow_schema(),
            vec![
                Arc::new(
                    dates
                        .iter()
                        .map(|d| Some(days_since_epoch(d.date)))
                        .collect::<Date32Array>(),
                ),
                Arc::new(Int64Array::from_iter_values(
                    dates.iter().map(|d| d.window_batch),
                )),
                text(&|d| days(&d.present).join(",")),
                text(&|d| days(&d.missing).join(",")),
                Arc::new(StringArray::from(vec![self.run.id.as_str(); n])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Utc::now().timestamp_micros(); n])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .map_err(|e| err(e.into()))?;
        let df = self.ctx.read_batch(batch).map_err(&err)?;
        self.write(log, df, mode, refresh).await
    }
}

/// The Sundays of the weeks (Monday to Sunday) that overlap `month`.
fn sundays_over(month: Month) -> Vec<NaiveDate> {
    let first = month.first_day();
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    let last_week_ends = first
        .checked_add_months(chrono::Months::new(1))
        .map_or(NaiveDate::MAX, |next| next + Duration::days(5));
    std::iter::successors(Some(first + Duration::days(i64::from(to_sunday))), |d| {
        Some(*d + Duration::days(7))
    })
    .take_while(|d| *d <= last_week_ends)
    .collect()
}

/// The first day of the window of chart date `date`.
fn window_start(date: NaiveDate) -> NaiveDate {
    date - Duration::days(WINDOW_DAYS - 1)
}

/// The window of chart date `date` over the days with a log.
fn window(logs: &BTreeMap<NaiveDate, i64>, date: NaiveDate) -> ChartDate {
    let first = window_start(date);
    let mut chart = ChartDate {
        date,
        window_batch: 0,
        present: Vec::new(),
        missing: Vec::new(),
    };
    for day in first.iter_days().take(WINDOW_DAYS as usize) {
        match logs.get(&day) {
            Some(batch) => {
                chart.window_batch = chart.window_batch.max(*batch);
                chart.present.push(day);
            }
            None => chart.missing.push(day),
        }
    }
    chart
}

/// Whether `day` falls in one of `ranges`.
fn in_ranges(ranges: &Days, day: NaiveDate) -> bool {
    ranges
        .0
        .iter()
        .any(|(from, to)| from.is_none_or(|f| f <= day) && to.is_none_or(|t| day <= t))
}

/// The days whose plays fall in the weeks (Monday to Sunday) of the Sundays in `sundays`:
/// from the Monday before the first to the last (`None`: unbounded); `None` for no Sundays.
fn plays_of_weeks(sundays: &Days) -> Option<(Option<NaiveDate>, Option<NaiveDate>)> {
    let (first, last) = sundays.span()?;
    Some((first.map(|f| f - Duration::days(6)), last))
}

/// The values of a query's `$first_day` and `$last_day` (NULL: no bound).
fn day_bounds(first: Option<NaiveDate>, last: Option<NaiveDate>) -> ParamValues {
    let day = |d: Option<NaiveDate>| d.map_or(ScalarValue::Date32(None), date_value);
    ParamValues::Map(
        [("first_day", day(first)), ("last_day", day(last))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect(),
    )
}

fn days(days: &[NaiveDate]) -> Vec<String> {
    days.iter().map(NaiveDate::to_string).collect()
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

fn date_value(d: NaiveDate) -> ScalarValue {
    ScalarValue::Date32(Some(days_since_epoch(d)))
}

/// The date column `name` of `batch`.
pub(crate) fn date_column(
    batch: &RecordBatch,
    name: &str,
) -> std::result::Result<Vec<Option<NaiveDate>>, datafusion::arrow::error::ArrowError> {
    let array = batch.column_by_name(name).ok_or_else(|| {
        datafusion::arrow::error::ArrowError::SchemaError(format!("no column {name}"))
    })?;
    let array = datafusion::arrow::compute::cast(array, &DataType::Date32)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok(array
        .as_primitive::<Date32Type>()
        .iter()
        .map(|d| d.map(|d| epoch + Duration::days(i64::from(d))))
        .collect())
}
