//! The text files of a chart's dates, `<lake>/gold/<source>/charts/<file>_YYYYMMDD.txt`, made
//! from the chart's rows on their way to the chart table: one pass over the rows writes both.
//! Each file is made on local disk first (a user chart is hundreds of MB a day, and a run may
//! chart hundreds of days) and uploaded only once the table's commit landed
//! ([`ChartFiles::finish`]), so a run whose commit fails or is fenced off changes no file; a
//! failed write gives its files up ([`ChartFiles::abort`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

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
    /// Where the files are made before they are uploaded; removed at the end.
    staging: PathBuf,
    prefix: &'static str,
    table: String,
    key: &'static str,
    song: &'static str,
    files: BTreeMap<NaiveDate, File>,
}

/// One date's file: one line per key in ascending order, `key|song:streams,…` in rank order.
struct File {
    name: String,
    staged: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    /// The key of the line being made.
    key: Option<String>,
}

impl ChartFiles {
    /// The files of `chart`, made under `staging` (a folder of their own) before they go
    /// to `folder`.
    pub(crate) fn new(
        folder: Location,
        staging: PathBuf,
        prefix: &'static str,
        chart: &Chart,
    ) -> Self {
        Self {
            folder,
            staging,
            prefix,
            table: chart.def.qualified_name(),
            key: chart.key,
            song: chart.song,
            files: BTreeMap::new(),
        }
    }

    /// Adds the rows of `batch`, which come sorted by chart date, key and rank, to their
    /// dates' files.
    pub(crate) fn add(&mut self, batch: &RecordBatch) -> Result<()> {
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
            let file = self.file(date)?;
            let mut text = String::new();
            for i in run {
                if file.key.as_deref() != Some(key.value(i)) {
                    if file.key.is_some() {
                        text.push('\n');
                    }
                    text.push_str(key.value(i));
                    text.push('|');
                    file.key = Some(key.value(i).to_string());
                } else {
                    text.push(',');
                }
                text.push_str(song.value(i));
                text.push(':');
                text.push_str(itoa::Buffer::new().format(streams.value(i)));
            }
            file.write(text.as_bytes())?;
        }
        Ok(())
    }

    /// The file of `date`, opened when its first row comes.
    fn file(&mut self, date: NaiveDate) -> Result<&mut File> {
        use std::collections::btree_map::Entry;
        let name = format!("{}_{}.txt", self.prefix, date.format("%Y%m%d"));
        match self.files.entry(date) {
            Entry::Occupied(file) => Ok(file.into_mut()),
            Entry::Vacant(slot) => {
                let staged = self.staging.join(&name);
                let opened = std::fs::create_dir_all(&self.staging)
                    .and_then(|()| std::fs::File::create(&staged))
                    .map_err(|e| LakeError::Io {
                        location: staged.display().to_string(),
                        message: format!("cannot make a chart file on local disk: {e}"),
                    })?;
                Ok(slot.insert(File {
                    name,
                    staged,
                    out: std::io::BufWriter::new(opened),
                    key: None,
                }))
            }
        }
    }

    /// Uploads the files, with an empty one for each of `dates` that had no row, and removes
    /// the local copies; their URLs, in date order.
    pub(crate) async fn finish(mut self, dates: &[NaiveDate]) -> Result<Vec<String>> {
        for date in dates {
            self.file(*date)?;
        }
        let mut urls = Vec::new();
        for (_, mut file) in std::mem::take(&mut self.files) {
            if file.key.is_some() {
                file.write(b"\n")?;
            }
            file.out.flush().map_err(|e| file.failed(e))?;
            let url = self.upload(&file).await?;
            tracing::info!(chart = %self.table, "{url} written");
            urls.push(url);
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        Ok(urls)
    }

    /// Uploads one staged file to its place in the lake: the object appears whole.
    async fn upload(&self, file: &File) -> Result<String> {
        let path = self.folder.file_path(&file.name);
        let url = self.folder.object_url(&path);
        let failed = |e: std::io::Error| LakeError::Io {
            location: url.clone(),
            message: format!("cannot upload the chart file: {e}"),
        };
        let mut staged = tokio::fs::File::open(&file.staged)
            .await
            .map_err(|e| file.failed(e))?;
        let mut out = BufWriter::new(self.folder.store().clone(), path);
        tokio::io::copy(&mut staged, &mut out)
            .await
            .map_err(failed)?;
        out.shutdown().await.map_err(failed)?;
        Ok(url)
    }

    /// Gives the files up: none is uploaded.
    pub(crate) fn abort(self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

impl File {
    fn write(&mut self, text: &[u8]) -> Result<()> {
        self.out.write_all(text).map_err(|e| self.failed(e))
    }

    fn failed(&self, e: std::io::Error) -> LakeError {
        LakeError::Io {
            location: self.staged.display().to_string(),
            message: format!("cannot write the chart file on local disk: {e}"),
        }
    }
}
