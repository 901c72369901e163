//! The gold job: the SQL in `sql/` over silver, one definition for every source.
//!
//! Each source is declared ([`sources`]): the silver tables it reads, its listening sessions
//! ([`sessions`]: `plays` mapped onto the same session SQL for every source, delivered as
//! `top_songs.tsv`), its own tables (`sql/<source>/*.sql`), and its 7-day top-50 charts
//! ([`charts`]: one chart SQL over each source's window of streams, delivered as text files
//! where a source wants them). A source whose silver tables do not exist yet is skipped.

mod chart_files;
pub mod charts;
pub mod sessions;
pub mod sources;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::prelude::{DataFrame, SessionContext};
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    ClusterArgs, Commit, Compute, Days, GOLD_TXN, Input, Lake, LakeError, Month, Refresh, Requires,
    Result, Run, Scope, Sql, Summary, WriteMode, Written, catalog, session,
};
use lake_schema::{Layer, TableDef};

pub use sessions::{SESSIONS, TOP_SESSIONS, TOP_SONGS, TOP_SONGS_FILE, top_songs_tsv};
use sources::{SOURCES, Source};

pub async fn run(
    run: Arc<Run>,
    scope: Scope,
    out: Option<PathBuf>,
    cluster: ClusterArgs,
) -> Result<Summary> {
    let compute = Compute::new(&run.cfg, &cluster)?;
    let mut summary = Summary::default();
    summary.detail("scope", format!("{scope:?}"));
    summary.detail("sql_ran", compute.describe());
    for source in SOURCES {
        let Some(gold) = Gold::open(&run, &compute, source, scope, &mut summary).await? else {
            continue;
        };
        let steps = source.sessions.as_ref().map_or(0, |_| 3)
            + source.extra.len()
            + source.charts.as_ref().map_or(0, |c| c.tables.len());
        let progress = Progress::new(&format!("gold {}", source.name), steps as u64, Unit::Steps);
        let mut built = Built::default();
        if let Some(sessions) = &source.sessions {
            built.add(
                gold.sessions(sessions, out.as_ref(), &progress, &mut summary)
                    .await?,
            );
        }
        for (def, sql) in source.extra {
            built
                .written
                .extend(gold.build_table(sql, def, &mut summary).await?);
            progress.inc(1);
        }
        if let Some(charts) = &source.charts {
            built.add(gold.charts(charts, &progress, &mut summary).await?);
        }
        progress.finish();
        summary.rows_in += built.read;
        summary.rows_out += built.written.iter().map(|w| w.rows).sum::<u64>();
        summary.outputs.extend(built.written);
    }
    let report = report(&run).await?;
    summary.detail("report", report);
    Ok(summary)
}

/// Writes the lake's report from every table as it now is; its URL.
async fn report(run: &Run) -> Result<String> {
    let ctx = session(&run.cfg);
    catalog::attach(&ctx, &run.lake);
    let (url, _) = lake_report::write(&run.lake, &ctx).await?;
    tracing::info!("report written: {url}");
    Ok(url)
}

/// What a part of a source's run wrote, and the input rows it read.
#[derive(Debug, Default)]
pub(crate) struct Built {
    written: Vec<Written>,
    read: u64,
}

impl Built {
    /// Adds a part's tables; its parts read the same inputs (a source's plays), so the source
    /// read as many rows as the part that read most.
    fn add(&mut self, part: Built) {
        self.written.extend(part.written);
        self.read = self.read.max(part.read);
    }
}

/// What changed below a gold table since it was built ([`Gold::changes`]).
pub(crate) enum Changes {
    /// Nothing: every input is at the version the table was built from.
    Nothing,
    /// The rows of these months (none: the inputs that changed hold the same rows, or are
    /// not read).
    Months(BTreeSet<Month>),
    /// Something the logs cannot place in months: build the table in full.
    Unknown,
}

/// One source's gold run.
pub(crate) struct Gold<'a> {
    run: &'a Run,
    source: &'a Source,
    scope: Scope,
    ctx: SessionContext,
    /// The lake as `ctx` reads it (see [`Compute::lake`]).
    lake: Lake,
    /// The transactions a table computed from the input versions read records.
    txns: Vec<(String, i64)>,
    /// Whether the queries run on a Ballista cluster.
    on_cluster: bool,
}

impl<'a> Gold<'a> {
    /// Registers the source's input tables; `None` (with a message) when none of its silver
    /// tables exists yet.
    async fn open(
        run: &'a Run,
        compute: &Compute,
        source: &'a Source,
        scope: Scope,
        summary: &mut Summary,
    ) -> Result<Option<Gold<'a>>> {
        let ctx = compute.session().await?;
        let lake = compute.lake(&run.lake);
        let inputs: Vec<Input> = lake.register_inputs(&ctx, source.inputs).await?;
        let silver = |i: &&Input| {
            source
                .inputs
                .iter()
                .any(|d| d.layer == Layer::Silver && d.qualified_name() == i.name)
        };
        if inputs.iter().filter(silver).all(|i| i.version.is_none()) {
            tracing::info!("{} has no silver tables yet: skipping it", source.name);
            return Ok(None);
        }
        let txns = inputs
            .iter()
            .map(|i| {
                let version = i.version.map_or(-1, |v| v as i64);
                (format!("{GOLD_TXN}:{}", i.name), version)
            })
            .collect();
        summary.inputs.extend(inputs);
        Ok(Some(Gold {
            run,
            lake,
            source,
            scope,
            ctx,
            txns,
            on_cluster: compute.on_cluster(),
        }))
    }

    /// What this run does to `def`: tables computed from other input versions are recomputed
    /// in full (rankings span every session, so a change anywhere can change any row; the
    /// sessions and the weekly charts narrow this down, see [`Gold::changes`]); a backfill
    /// replaces days.
    async fn plan(&self, def: &TableDef) -> Result<Refresh> {
        Ok(match self.scope {
            Scope::Full => Refresh::Full,
            Scope::Range(from, to) if def.column("day").is_some() => Refresh::Days {
                days: Days::of_range(from, to),
                column: "day",
            },
            Scope::Range(..) => Refresh::NotInScope,
            Scope::Changed => {
                for (app, version) in &self.txns {
                    if self.run.lake.txn_version(def, app).await? != Some(*version) {
                        return Ok(Refresh::Full);
                    }
                }
                Refresh::UpToDate
            }
        })
    }

    /// What changed below `def` since it was built, as the Delta logs of its inputs say: the
    /// months whose files changed in the inputs `reads` accepts (the others do not matter to
    /// `def`); an input rewritten with the same rows (silver rebuilds the users with every
    /// delivery) changes nothing; a change the logs cannot place in months (an input not
    /// partitioned by month, a version no longer readable) is [`Changes::Unknown`].
    pub(crate) async fn changes(
        &self,
        def: &TableDef,
        reads: impl Fn(&TableDef) -> bool,
    ) -> Result<Changes> {
        let mut months = BTreeSet::new();
        let mut changed = false;
        for (app, version) in &self.txns {
            let Some(recorded) = self.run.lake.txn_version(def, app).await? else {
                return Ok(Changes::Unknown);
            };
            if recorded == *version {
                continue;
            }
            changed = true;
            let input = app.strip_prefix(&format!("{GOLD_TXN}:")).and_then(|name| {
                self.source
                    .inputs
                    .iter()
                    .find(|d| d.qualified_name() == name)
            });
            let Some(input) = input else {
                return Ok(Changes::Unknown);
            };
            if !reads(input) {
                continue;
            }
            if let Some(changed) = self.run.lake.changed_months(input, recorded).await? {
                months.extend(changed);
                continue;
            }
            let local = session(&self.run.cfg);
            match self.run.lake.same_rows(&local, input, recorded).await {
                Ok(true) => {}
                Ok(false) => return Ok(Changes::Unknown),
                Err(e) => {
                    tracing::warn!(
                        "{}: cannot compare {} with its version {recorded} ({e}): rebuilt in full",
                        def.qualified_name(),
                        input.qualified_name()
                    );
                    return Ok(Changes::Unknown);
                }
            }
        }
        Ok(match changed {
            true => Changes::Months(months),
            false => Changes::Nothing,
        })
    }

    /// Notes what this run does to `def` in the log and the run record.
    fn describe(&self, def: &TableDef, refresh: &Refresh, summary: &mut Summary) {
        let name = def.qualified_name();
        tracing::info!(table = %name, "{}", refresh.describe());
        summary.detail(&format!("{name} refresh"), refresh.describe());
    }

    /// Plans and writes one table in one commit; `None` when it is left alone.
    async fn build_table(
        &self,
        sql: &Sql,
        def: &TableDef,
        summary: &mut Summary,
    ) -> Result<Option<Written>> {
        let refresh = self.plan(def).await?;
        self.describe(def, &refresh, summary);
        let Some(mode) = refresh.write_mode() else {
            return Ok(None);
        };
        let df = sql.plan(&self.ctx).await?;
        self.write(def, df, mode, &refresh).await.map(Some)
    }

    /// Writes `df` in one commit as `refresh` says (keeping only the rows it replaces); a table
    /// rebuilt in full, or brought up to date with all changes (a run over all changes that
    /// charts the weeks a delivery changed), records the input versions it was computed from.
    async fn write(
        &self,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        refresh: &Refresh,
    ) -> Result<Written> {
        let df = replaced_rows(def, df, refresh)?;
        self.lake
            .write(&self.ctx, def, df, mode, &self.commit(refresh))
            .await
    }

    /// The commit of a write as `refresh` says: see [`Gold::write`].
    fn commit(&self, refresh: &Refresh) -> Commit {
        let mut commit = self.run.commit();
        let up_to_date = match refresh {
            Refresh::Full => true,
            Refresh::Days { .. } | Refresh::Months(_) => self.scope == Scope::Changed,
            _ => false,
        };
        if up_to_date {
            for (app, version) in &self.txns {
                commit = commit.txn(app, *version);
                // never over what a run computed from newer versions; but a full refresh is
                // the way out when a silver table was rebuilt and its versions began again
                if self.scope != Scope::Full {
                    commit = commit.requires(app, Requires::AtMost(*version));
                }
            }
        }
        commit
    }
}

/// The rows of `df` a write as `refresh` says keeps: those it replaces, when it replaces part
/// of the table.
fn replaced_rows(def: &TableDef, df: DataFrame, refresh: &Refresh) -> Result<DataFrame> {
    match refresh.replaced() {
        Some(rows) => df
            .filter(rows)
            .map_err(LakeError::query(def.qualified_name())),
        None => Ok(df),
    }
}
