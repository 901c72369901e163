//! Listening sessions over a source's plays, the same SQL for every source: sessions, the 50
//! longest, the 10 songs most played in them, delivered as `<lake>/gold/<source>/top_songs.tsv`.

use std::fmt::Write as _;
use std::path::PathBuf;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::col;
use lake_runtime::progress::Progress;
use lake_runtime::{
    LakeError, Result, Sql, Summary, int64_column, register_view, sql, text_column,
};

use crate::sources::Sessions;
use crate::{Built, Gold};

pub const SESSIONS: Sql = sql!("sessions");
pub const TOP_SESSIONS: Sql = sql!("top_sessions");
pub const TOP_SONGS: Sql = sql!("top_songs");

pub const TOP_SONGS_FILE: &str = "top_songs.tsv";

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
        let mut written = Vec::new();
        for (sql, def, next_view) in [
            (&SESSIONS, tables.sessions, "sessions"),
            (&TOP_SESSIONS, tables.top_sessions, "top_sessions"),
            (&TOP_SONGS, tables.top_songs, "top_songs"),
        ] {
            written.extend(self.build_table(sql, def, summary).await?);
            progress.inc(1);
            self.lake.register(&self.ctx, def).await?;
            let table = self
                .ctx
                .table(def.qualified_name())
                .await
                .map_err(LakeError::query(def.qualified_name()))?;
            register_view(&self.ctx, next_view, table)?;
        }
        let read = if written.is_empty() {
            0
        } else {
            self.plays().await?
        };
        self.deliver(tables, out, summary).await?;
        Ok(Built { written, read })
    }

    /// The plays the tables were computed from.
    async fn plays(&self) -> Result<u64> {
        let err = LakeError::query("plays");
        let plays = self.ctx.table("plays").await.map_err(&err)?;
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

        use super::super::{SESSIONS, TOP_SESSIONS, TOP_SONGS};
        use lake_runtime::Sql;

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
            let batches = df.collect().await.expect(sql.name);
            let options =
                FormatOptions::default().with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%SZ"));
            let mut rows = Vec::new();
            for b in &batches {
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
            let schema = batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
            let table = MemTable::try_new(schema, vec![batches]).expect("mem table");
            ctx.register_table(name, Arc::new(table)).expect("register");
            rows
        }

        #[tokio::test]
        async fn gold_sql_gives_the_rows_of_every_case() {
            let cases = cases();
            assert!(cases.len() >= 4, "cases.txt was not read");
            for case in cases {
                let ctx = SessionContext::new();
                ctx.register_batch("plays", plays(&case)).expect("plays");
                let mut sessions = step(&ctx, &SESSIONS, "sessions").await;
                let _ = step(&ctx, &TOP_SESSIONS, "top_sessions").await;
                let top_songs = step(&ctx, &TOP_SONGS, "top_songs").await;
                if let Some(mut expected) = case.sessions {
                    sessions.sort();
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
    }
}
