//! The text files of a chart's dates, `<lake>/gold/<source>/charts/<file>_YYYYMMDD.txt`, made
//! from the chart's rows on their way to the chart table: one pass over the rows writes both.
//! A file is made visible only once the table's commit landed ([`ChartFiles::finish`]); a
//! failed write gives its files up ([`ChartFiles::abort`]).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::partition;
use lake_runtime::{LakeError, Location, Result, int64_column, text_column};
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::charts::date_column;
use crate::sources::Chart;

/// The files of one chart's dates, filled as its rows go by.
pub(crate) struct ChartFiles {
    folder: Location,
    prefix: &'static str,
    table: String,
    key: &'static str,
    song: &'static str,
    files: BTreeMap<NaiveDate, File>,
}

/// One date's file: one line per key in ascending order, `key|song:streams,…` in rank order.
struct File {
    url: String,
    out: BufWriter,
    /// The text not handed to `out` yet: the line being made, maybe more.
    line: String,
    /// The key of the line being made.
    key: Option<String>,
}

impl ChartFiles {
    pub(crate) fn new(folder: Location, prefix: &'static str, chart: &Chart) -> Self {
        Self {
            folder,
            prefix,
            table: chart.def.qualified_name(),
            key: chart.key,
            song: chart.song,
            files: BTreeMap::new(),
        }
    }

    /// Adds the rows of `batch`, which come sorted by chart date, key and rank, to their
    /// dates' files.
    pub(crate) async fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let bad = |e: datafusion::arrow::error::ArrowError| LakeError::query(&self.table)(e.into());
        let dates = date_column(batch, "chart_date").map_err(bad)?;
        let key = text_column(batch, self.key).map_err(bad)?;
        let song = text_column(batch, self.song).map_err(bad)?;
        let streams = int64_column(batch, "streams").map_err(bad)?;
        let runs = partition(
            &[batch.column_by_name("chart_date").cloned().ok_or_else(|| {
                bad(datafusion::arrow::error::ArrowError::SchemaError(
                    "the chart rows have no chart_date".into(),
                ))
            })?],
        )
        .map_err(bad)?;
        for run in runs.ranges() {
            let Some(date) = dates[run.start] else {
                continue;
            };
            let file = self.file(date);
            for i in run {
                if file.key.as_deref() != Some(key.value(i)) {
                    if file.key.is_some() {
                        file.line.push('\n');
                    }
                    file.line.push_str(key.value(i));
                    file.line.push('|');
                    file.key = Some(key.value(i).to_string());
                } else {
                    file.line.push(',');
                }
                file.line.push_str(song.value(i));
                file.line.push(':');
                file.line
                    .push_str(itoa::Buffer::new().format(streams.value(i)));
            }
            file.hand_over_lines().await?;
        }
        Ok(())
    }

    /// The file of `date`, opened when its first row comes.
    fn file(&mut self, date: NaiveDate) -> &mut File {
        let (folder, prefix) = (&self.folder, self.prefix);
        self.files.entry(date).or_insert_with(|| {
            let path = folder.file_path(&format!("{prefix}_{}.txt", date.format("%Y%m%d")));
            File {
                url: folder.object_url(&path),
                out: BufWriter::new(folder.store().clone(), path),
                line: String::new(),
                key: None,
            }
        })
    }

    /// Makes the files visible, with an empty one for each of `dates` that had no row; their
    /// URLs, in date order.
    pub(crate) async fn finish(mut self, dates: &[NaiveDate]) -> Result<Vec<String>> {
        for date in dates {
            self.file(*date);
        }
        let mut urls = Vec::new();
        for (_, mut file) in std::mem::take(&mut self.files) {
            if file.key.is_some() {
                file.line.push('\n');
            }
            let failed = |e: std::io::Error| LakeError::Io {
                location: file.url.clone(),
                message: e.to_string(),
            };
            file.out
                .write_all(file.line.as_bytes())
                .await
                .map_err(failed)?;
            file.out.shutdown().await.map_err(failed)?;
            tracing::info!(chart = %self.table, "{} written", file.url);
            urls.push(file.url);
        }
        Ok(urls)
    }

    /// Gives the files up: none becomes visible.
    pub(crate) async fn abort(self) {
        for (_, mut file) in self.files {
            if let Err(e) = file.out.abort().await {
                tracing::warn!("could not abort the upload of {}: {e}", file.url);
            }
        }
    }
}

impl File {
    /// Hands the whole lines made so far to the upload; the last one may go on.
    async fn hand_over_lines(&mut self) -> Result<()> {
        if let Some(end) = self.line.rfind('\n') {
            self.out
                .write_all(&self.line.as_bytes()[..=end])
                .await
                .map_err(|e| LakeError::Io {
                    location: self.url.clone(),
                    message: e.to_string(),
                })?;
            self.line.drain(..=end);
        }
        Ok(())
    }
}
