//! The silver engine: builds the tables of any declared [`Source`] from its bronze tables,
//! incrementally, and reconciles the counts.

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::functions::expr_fn::{left, to_char};
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::logical_expr::cast;
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use lake_runtime::batches::{LaneMarks, mark};
use lake_runtime::lake::register_provider;
use lake_runtime::progress::{Progress, Unit};
use lake_runtime::{
    Days, Input, LakeError, Month, Months, Part, Readable, Refresh, Registry, Requires, Result,
    Run, SILVER_TXN, Scope, Summary, Written, counts, register_view,
};
use lake_schema::{Layer, TableDef};
use serde_json::{Map, Value, json};

use crate::parts::{Split, part_txn};
use crate::source::{Checked, Kind, Reconcile, Source, Table};
use crate::tap::Tap;

/// What a run of silver does, for every source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub scope: Scope,
    /// A part of a split (`--part`): its scope is its range.
    pub part: Option<PartOf>,
    /// Read the bronze batches up to this one only (planning a split reads up to its batch).
    pub through: Option<i64>,
}

/// A part of a split as a run carries it out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartOf {
    pub part: Part,
    /// The split leaves it no month.
    pub empty: bool,
    /// The batch the split was cut from, which the part's marker records: what the plain run
    /// takes the table's state to be when every part's marker says it. The part reads up to
    /// the source's mark now, which may be more: a table holding more than its marker says is
    /// still right (the plain run replaces again the months of the batches since), and one
    /// holding less would lose what a plain run consumed meanwhile.
    pub plan_batch: i64,
}

/// One source's run: its checked views and what was done to each table.
pub(crate) struct Engine<'a> {
    run: &'a Run,
    ctx: &'a SessionContext,
    scope: Scope,
    part: Option<PartOf>,
    /// The last split planned (`silver/_splits/`), when this run may take the state of its
    /// parts' tables from their markers.
    split: Option<&'a Split>,
    source: &'static Source,
    /// The checked views, planned over the bronze batches up to `mark`.
    checked: Vec<(&'static Checked, DataFrame)>,
    /// The consumption mark: every bronze batch of the source up to it is complete, and the
    /// run takes in those only.
    mark: i64,
    /// The source's part of the run record (`details.<source>`).
    details: Map<String, Value>,
}

impl<'a> Engine<'a> {
    /// Registers the source's input tables, each as of one snapshot and narrowed to the bronze
    /// batches up to the source's mark, and plans its checked views; `None` (with a message)
    /// when none of its bronze tables exists yet.
    pub(crate) async fn open(
        run: &'a Run,
        ctx: &'a SessionContext,
        target: Target,
        split: Option<&'a Split>,
        registry: &Registry,
        source: &'static Source,
        summary: &mut Summary,
    ) -> Result<Option<Engine<'a>>> {
        // the floor before the snapshots: every claim at or below it was complete before them
        let floor = registry.floor().await?;
        let mut pinned = Vec::new();
        for def in source.inputs {
            pinned.push((*def, run.lake.pin(ctx, def).await?));
        }
        let bronze = || pinned.iter().filter(|(d, _)| d.layer == Layer::Bronze);
        if bronze().all(|(_, p)| p.version.is_none()) {
            tracing::info!("{} has no bronze tables yet: skipping it", source.name);
            return Ok(None);
        }
        summary.inputs.extend(pinned.iter().map(|(d, p)| Input {
            name: d.qualified_name(),
            version: p.version,
        }));
        let mut details = Map::new();
        let mark = consumption_mark(ctx, registry, floor, source, &pinned, &mut details).await?;
        let mark = target.through.map_or(mark, |t| t.min(mark));
        narrow_to(ctx, &pinned, mark)?;
        for view in source.shared {
            register_view(ctx, view.name, view.plan(ctx).await?)?;
        }
        let mut checked = Vec::new();
        for view in source.checked {
            let mut df = view.sql.plan(ctx).await?;
            if view.cached {
                df = df.cache().await.map_err(LakeError::query(view.sql.path))?;
            }
            checked.push((*view, df));
        }
        Ok(Some(Engine {
            run,
            ctx,
            scope: target.scope,
            part: target.part,
            split,
            source,
            checked,
            mark,
            details,
        }))
    }

    /// Builds every table of the source, reconciles their counts and reports its figures.
    pub(crate) async fn build(mut self, summary: &mut Summary) -> Result<()> {
        summary.rows_in += self.rows_read().await?;
        let progress = Progress::new(
            &format!("silver {}", self.source.name),
            self.source.tables.len() as u64,
            Unit::Steps,
        );
        let mut built = Vec::new();
        let mut taps = Vec::new();
        for table in self.source.tables {
            // what the table holds of bronze, as this run plans from it
            let recorded = self.run.lake.txn_version(table.def, SILVER_TXN).await?;
            let refresh = self.plan(table, recorded).await?;
            let name = table.def.qualified_name();
            tracing::info!(table = %name, "{}", refresh.describe());
            summary.detail(&format!("{name} refresh"), refresh.describe());
            let written = self.write(table, &refresh, recorded, &mut taps).await?;
            progress.inc(1);
            if let Kind::Rejects = table.kind {
                // the quarantine has what the taps kept: their counts stay, their rows go
                taps.iter().for_each(Tap::release);
            }
            if let Some(w) = &written {
                match table.kind {
                    Kind::Rejects => summary.rows_quarantined += w.rows,
                    _ => summary.rows_out += w.rows,
                }
                summary.outputs.push(w.clone());
            }
            built.push((table, refresh, written));
        }
        progress.finish();
        let mut reconciled = Map::new();
        for (table, refresh, written) in &built {
            if let (Some(r), Some(w)) = (table.reconcile, written)
                && let Some(counts) = self.reconcile(table, (r, &taps), refresh, w).await?
            {
                reconciled.insert(table.def.qualified_name(), counts);
            }
        }
        if !reconciled.is_empty() {
            self.details
                .insert("reconciliation".into(), Value::Object(reconciled));
        }
        if built.iter().any(|(_, _, w)| w.is_some()) {
            for measure in self.source.measures {
                let figures = counts(measure.plan(self.ctx).await?, measure.path).await?;
                self.details
                    .extend(figures.iter().map(|(k, v)| (k.clone(), json!(v))));
            }
        }
        summary.detail(self.source.name, Value::Object(self.details));
        Ok(())
    }

    /// Registers the checked views, narrowed to what `refresh` reads: the months or days it
    /// rebuilds (by the records' text time where they have one, so that scans skip files) or
    /// the batches it appends.
    fn narrow_inputs(&self, refresh: &Refresh) -> Result<()> {
        for (view, df) in &self.checked {
            let predicate = match refresh {
                Refresh::After(b) => Some(col("batch").gt(lit(*b))),
                _ => view.time.as_ref().and_then(|t| match t.text {
                    Some(text) => refresh.text_filter(text),
                    None => refresh.time_filter(col(t.typed)),
                }),
            };
            let df = match predicate {
                Some(p) => df
                    .clone()
                    .filter(p)
                    .map_err(LakeError::query(view.sql.path))?,
                None => df.clone(),
            };
            register_view(self.ctx, view.sql.name, df)?;
        }
        Ok(())
    }

    /// What this run does to `table`, which holds bronze up to `recorded`.
    async fn plan(&self, table: &Table, recorded: Option<i64>) -> Result<Refresh> {
        Ok(match (self.scope, table.kind) {
            (Scope::Full, _) => Refresh::Full,
            (Scope::Range(..), Kind::Daily { column, .. }) => self.range(Some(column)),
            (Scope::Range(..), kind) if kind.is_dated() => self.range(None),
            (Scope::Range(..), _) => Refresh::NotInScope,
            (Scope::Changed, kind) => match self.held(table, recorded).await? {
                Held::Nothing => Refresh::Full,
                Held::ByParts(held) if held >= self.mark => Refresh::Consumed,
                Held::Recorded(held) if held >= self.mark => Refresh::UpToDate,
                Held::Recorded(held) | Held::ByParts(held) => match kind {
                    Kind::Monthly { new_rows } => {
                        let new = self.new_dates(new_rows, held, true).await?;
                        Refresh::Months(Months::each(new.into_iter().map(Month::of)))
                    }
                    Kind::Daily { new_rows, column } => Refresh::Days {
                        days: Days::each(self.new_dates(new_rows, held, false).await?),
                        column,
                    },
                    Kind::MonthlyRebuilt | Kind::Whole => Refresh::Full,
                    Kind::Rejects => Refresh::After(held),
                },
            },
        })
    }

    /// What a range run (a backfill or a part) rebuilds: its days of daily tables (by the date
    /// `column`), its months of the others; nothing for a part with no month.
    fn range(&self, daily: Option<&'static str>) -> Refresh {
        let empty = self.part.is_some_and(|p| p.empty);
        let Scope::Range(from, to) = self.scope else {
            return Refresh::NotInScope;
        };
        match (daily, empty) {
            (Some(column), true) => Refresh::Days {
                days: Days::each([]),
                column,
            },
            (Some(column), false) => Refresh::Days {
                days: Days::of_range(from, to),
                column,
            },
            (None, true) => Refresh::Months(Months::each([])),
            (None, false) => Refresh::Months(Months::of_days(from, to)),
        }
    }

    /// The newest bronze batch `table` holds everything of: what the last run over all changes
    /// recorded or, when the parts of the last split together rebuilt it from a newer batch
    /// (their markers agree), that batch.
    async fn held(&self, table: &Table, held: Option<i64>) -> Result<Held> {
        let lake = &self.run.lake;
        let recorded = held.map_or(Held::Nothing, Held::Recorded);
        let Some(split) = self
            .split
            .filter(|s| held.is_none_or(|h| h < s.through_batch))
        else {
            return Ok(recorded);
        };
        if !matches!(table.kind, Kind::Monthly { .. } | Kind::Daily { .. }) {
            return Ok(recorded);
        }
        let mut markers = Vec::new();
        for index in 0..split.count {
            let part = Part {
                index,
                count: split.count,
            };
            markers.push(lake.txn_version(table.def, &part_txn(part)).await?);
        }
        let agreed = match markers.split_first() {
            Some((Some(first), rest)) if rest.iter().all(|m| *m == Some(*first)) => Some(*first),
            _ => None,
        };
        Ok(match (held, agreed) {
            (held, Some(p)) if held.is_none_or(|h| h < p) => Held::ByParts(p),
            _ => recorded,
        })
    }

    /// The days of the records of `view` (a view with a time) that bronze batches after `held`
    /// brought; with `accepted`, of those that break no rule only (a rejected record may have
    /// no time).
    async fn new_dates(&self, view: &Checked, held: i64, accepted: bool) -> Result<Vec<NaiveDate>> {
        let Some(time) = &view.time else {
            return Ok(Vec::new());
        };
        self.narrow_inputs(&Refresh::Full)?;
        let err = LakeError::query(format!("days of new rows in {}", view.sql.name));
        let mut new = col("batch").gt(lit(held));
        if accepted {
            new = new.and(col("reject_reason").is_null());
        }
        let day = cast(col(time.typed), DataType::Date32).alias("day");
        let batches = frame(self.ctx, view.sql.name)
            .await?
            .filter(new)
            .and_then(|df| df.select(vec![day]))
            .and_then(DataFrame::distinct)
            .map_err(&err)?
            .collect()
            .await
            .map_err(&err)?;
        let mut days = Vec::new();
        for b in &batches {
            let column = b
                .column(0)
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(|| {
                    err(datafusion::error::DataFusionError::Internal(
                        "the day is not a date".into(),
                    ))
                })?;
            days.extend(
                column
                    .iter()
                    .flatten()
                    .filter_map(|d| NaiveDate::from_num_days_from_ce_opt(d + UNIX_EPOCH_FROM_CE)),
            );
        }
        Ok(days)
    }

    /// Carries out `refresh` of `table` (planned when it held bronze up to `recorded`) in one
    /// commit; `None` when nothing is written. Either way the table is registered as it now is,
    /// for the tables built after it to read. A full rebuild keeps the rejects of the view the
    /// table reconciles with as it reads it (`taps`), and a full rebuild of the quarantine
    /// takes them from there when every view was kept so.
    async fn write(
        &self,
        table: &Table,
        refresh: &Refresh,
        recorded: Option<i64>,
        taps: &mut Vec<Tap>,
    ) -> Result<Option<Written>> {
        let Some(mode) = refresh.write_mode() else {
            self.run.lake.register(self.ctx, table.def).await?;
            return Ok(None);
        };
        self.narrow_inputs(refresh)?;
        if let Refresh::Full = refresh {
            match (table.kind, table.reconcile) {
                (Kind::Rejects, _) => self.take_rejects(taps)?,
                (_, Some(r)) => self.tap(r.input, taps).await?,
                _ => {}
            }
        }
        let err = LakeError::query(table.sql.path);
        let mut df = table.sql.plan(self.ctx).await?;
        if let Some(rows) = refresh.replaced() {
            df = df.filter(rows).map_err(&err)?;
        }
        if let Kind::Rejects = table.kind {
            let at = ScalarValue::TimestampMicrosecond(
                Some(self.run.started_micros()),
                Some("UTC".into()),
            );
            df = df
                .with_column("run_id", lit(self.run.id.as_str()))
                .and_then(|df| df.with_column("quarantined_at", lit(at)))
                .map_err(err)?;
        }
        // a run over all changes records what it consumed, if the table still holds what it
        // planned from; a backfill consumes nothing, and its rows must be at least as new as
        // what the table holds; a part records its marker on the tables whose state the parts
        // together make
        let mut commit = self.run.commit();
        if !matches!(self.scope, Scope::Range(..)) {
            commit = commit
                .txn(SILVER_TXN, self.mark)
                .requires(SILVER_TXN, Requires::Exactly(recorded));
        } else {
            commit = commit.requires(SILVER_TXN, Requires::AtMost(self.mark));
            if let Some(part) = self.part
                && matches!(table.kind, Kind::Monthly { .. } | Kind::Daily { .. })
            {
                // never over a newer split's part (it rebuilt some of these months from more);
                // and never a marker above what this run read (a source counted late)
                let count = part.part.count;
                for index in 0..count {
                    let sibling = part_txn(Part { index, count });
                    commit = commit.requires(sibling, Requires::AtMost(part.plan_batch));
                }
                let marker = part.plan_batch.min(self.mark);
                commit = commit.txn(part_txn(part.part), marker);
            }
        }
        let lake = &self.run.lake;
        let copies = table.copies.as_ref();
        let written = lake
            .write_distinct(self.ctx, table.def, df, mode, &commit, copies)
            .await?;
        self.run.lake.register(self.ctx, table.def).await?;
        Ok(Some(written))
    }

    /// Reads the checked view `view` through a tap that keeps its rejects, unless it is held in
    /// memory (read again at no cost) or tapped already.
    async fn tap(&self, view: &'static Checked, taps: &mut Vec<Tap>) -> Result<()> {
        let name = view.sql.name;
        if view.cached || taps.iter().any(|t| t.view() == name) {
            return Ok(());
        }
        let Some((_, df)) = self.checked.iter().find(|(c, _)| c.sql.name == name) else {
            return Ok(());
        };
        let (tap, table) = Tap::over(name, df.clone()).await?;
        lake_runtime::register_as(self.ctx, name, table)?;
        taps.push(tap);
        Ok(())
    }

    /// Registers the rejects the taps kept in place of their views, when every view not held in
    /// memory was tapped and read whole: the quarantine then reads no bronze.
    fn take_rejects(&self, taps: &[Tap]) -> Result<()> {
        let mut kept = Vec::new();
        for (view, _) in self.checked.iter().filter(|(c, _)| !c.cached) {
            let rejects = match taps.iter().find(|t| t.view() == view.sql.name) {
                Some(tap) => tap.rejects(),
                None => None,
            };
            match rejects {
                Some(rejects) => kept.push((view.sql.name, rejects)),
                None => {
                    tracing::info!(
                        "{}: the quarantine reads {} again (no table's pass kept all its rejects)",
                        self.source.name,
                        view.sql.name
                    );
                    return Ok(());
                }
            }
        }
        for (name, rejects) in &kept {
            lake_runtime::register_as(self.ctx, name, rejects.clone())?;
        }
        if !kept.is_empty() {
            tracing::info!(
                "{}: the quarantine takes the rejects its tables' passes kept; no bronze is read again",
                self.source.name
            );
        }
        Ok(())
    }

    /// Bronze records of the checked views that this run consumes: those of batches newer
    /// than the oldest any table holds (all of them in a full refresh, the range's months in a
    /// backfill). Notes the batches consumed in the run record.
    async fn rows_read(&mut self) -> Result<u64> {
        let consumed = match self.scope {
            Scope::Full => Refresh::Full,
            Scope::Range(..) if self.source.by_month() => self.range(None),
            Scope::Range(..) => self.range(Some("")),
            Scope::Changed => {
                let mut oldest = Some(i64::MAX);
                for t in self.source.tables {
                    let recorded = self.run.lake.txn_version(t.def, SILVER_TXN).await?;
                    let held = self.held(t, recorded).await?.batch();
                    oldest = oldest.zip(held).map(|(a, b)| a.min(b));
                }
                oldest.map_or(Refresh::Full, Refresh::After)
            }
        };
        // lineage: which bronze batches this run consumes (a backfill consumes none)
        let after = match consumed {
            Refresh::After(b) => Some(b),
            Refresh::Full => Some(0),
            _ => None,
        };
        if let Some(after) = after {
            self.details.insert(
                "bronze_batches".into(),
                json!({"after": after, "through": self.mark}),
            );
        }
        self.narrow_inputs(&consumed)?;
        let mut read = 0;
        for (view, _) in &self.checked {
            // a backfill reads the views with a time to narrow by
            if matches!(self.scope, Scope::Range(..)) && view.time.is_none() {
                continue;
            }
            read += self.count(view, &consumed).await?.0;
        }
        Ok(read)
    }

    /// The records of every checked view with a time, counted by the month they fall in (by
    /// their text time where they have one, which costs no parsing); records with no month
    /// are left out.
    pub(crate) async fn month_counts(&self) -> Result<Vec<(Month, u64)>> {
        self.narrow_inputs(&Refresh::Full)?;
        let mut months = Vec::new();
        for (view, _) in &self.checked {
            let Some(time) = &view.time else { continue };
            let month = match time.text {
                Some(text) => left(col(text), lit(7)),
                None => to_char(col(time.typed), lit("%Y-%m")),
            };
            let err = LakeError::query(format!("months of {}", view.sql.name));
            let rows = frame(self.ctx, view.sql.name)
                .await?
                .aggregate(
                    vec![month.alias("month")],
                    vec![count(lit(1)).alias("rows")],
                )
                .map_err(&err)?
                .collect()
                .await
                .map_err(&err)?;
            for b in &rows {
                let bad = |e: datafusion::arrow::error::ArrowError| err(e.into());
                let (names, n) = (
                    lake_runtime::text_column(b, "month").map_err(bad)?,
                    lake_runtime::int64_column(b, "rows").map_err(bad)?,
                );
                for i in 0..b.num_rows() {
                    let day = format!("{}-01", names.value(i));
                    if let Ok(d) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
                        months.push((Month::of(d), n.value(i).max(0) as u64));
                    }
                }
            }
        }
        Ok(months)
    }

    /// The source's consumption mark.
    pub(crate) fn mark(&self) -> i64 {
        self.mark
    }

    /// Counts the records of the (narrowed) checked view `view` that `refresh` rebuilds:
    /// (all, rejected). With months or days, those whose time falls in them, and the rejected
    /// among them. Otherwise this reads no column of bronze but `batch`: nothing is parsed.
    async fn count(&self, view: &Checked, refresh: &Refresh) -> Result<(u64, u64)> {
        let err = LakeError::query(format!("counting {}", view.sql.name));
        let mut df = frame(self.ctx, view.sql.name).await?;
        let in_time = view
            .time
            .as_ref()
            .and_then(|t| refresh.time_filter(col(t.typed)));
        let mut aggregates = vec![count(lit(1)).alias("rows_in")];
        if let Some(in_time) = in_time {
            df = df.filter(in_time).map_err(&err)?;
            aggregates.push(count(col("reject_reason")).alias("rejected"));
        }
        let df = df.aggregate(vec![], aggregates).map_err(&err)?;
        let n = counts(df, view.sql.path).await?;
        let get = |k: &str| n.get(k).max(0) as u64;
        Ok((get("rows_in"), get("rejected")))
    }

    /// The reconciliation of a written table: rows in = rows out + rejected + the rest; `None`
    /// when the refresh read records it cannot count (months of a view without a time).
    async fn reconcile(
        &self,
        table: &Table,
        (r, taps): (Reconcile, &[Tap]),
        refresh: &Refresh,
        written: &Written,
    ) -> Result<Option<Value>> {
        self.narrow_inputs(refresh)?;
        let tapped = match taps.iter().find(|t| t.view() == r.input.sql.name) {
            Some(tap) if matches!(refresh, Refresh::Full) => tap.counts(),
            _ => None,
        };
        let (rows_in, rejected) = match (refresh, tapped) {
            // counted as the table's pass read them
            (_, Some(counts)) => counts,
            (Refresh::Months(_) | Refresh::Days { .. }, None) if r.input.time.is_some() => {
                self.count(r.input, refresh).await?
            }
            // all of bronze: the quarantine, refreshed above, holds every reject, so no record
            // is parsed again to count them
            (Refresh::Full, None) => (
                self.count(r.input, refresh).await?.0,
                self.quarantined(table).await?,
            ),
            _ => return Ok(None),
        };
        let rest = rows_in.saturating_sub(written.rows + rejected);
        tracing::info!(
            table = %written.table,
            rows_in,
            rows_out = written.rows,
            rejected,
            rest,
            "reconciled: rows in = rows out + rejected + {}",
            r.rest
        );
        let mut counts = Map::new();
        counts.insert("rows_in".into(), json!(rows_in));
        counts.insert("rows_out".into(), json!(written.rows));
        counts.insert("rejected".into(), json!(rejected));
        counts.insert(r.rest.into(), json!(rest));
        Ok(Some(Value::Object(counts)))
    }

    /// Rows of the source's quarantine meant for `table`.
    async fn quarantined(&self, table: &Table) -> Result<u64> {
        let Some(quarantine) = self
            .source
            .tables
            .iter()
            .find(|t| matches!(t.kind, Kind::Rejects))
        else {
            return Ok(0);
        };
        let name = quarantine.def.qualified_name();
        let err = LakeError::query(&name);
        let df = frame(self.ctx, &name)
            .await?
            .filter(col("table_name").eq(lit(table.def.qualified_name())))
            .and_then(|df| df.aggregate(vec![], vec![count(lit(1)).alias("rows")]))
            .map_err(err)?;
        Ok(counts(df, &name).await?.get("rows").max(0) as u64)
    }
}

/// The source's consumption mark, from the snapshots of its inputs `pinned` and the claims
/// above `floor` (read before the snapshots): the highest bronze batch at or below which every
/// claimed batch of the source is complete. What holds it back, if anything, goes to the log
/// and to `details.held_back_by`.
async fn consumption_mark(
    ctx: &SessionContext,
    registry: &Registry,
    floor: i64,
    source: &Source,
    pinned: &[(&TableDef, Readable)],
    details: &mut Map<String, Value>,
) -> Result<i64> {
    let bronze = || pinned.iter().filter(|(d, _)| d.layer == Layer::Bronze);
    // the newest batch a snapshot holds rows of: the mark of a lake older than the claims
    let mut newest = 0;
    for (def, _) in bronze() {
        let df = frame(ctx, &def.qualified_name()).await?;
        let max_batch = df
            .aggregate(vec![], vec![max(col("batch")).alias("newest")])
            .map_err(LakeError::query(def.qualified_name()))?;
        let n = counts(max_batch, "newest bronze batch").await?;
        newest = newest.max(n.get("newest"));
    }
    lake_runtime::fault::point("silver.pinned");
    // the claims above the floor, listed after the snapshots: every batch they hold rows of
    // was claimed before, so none is missed
    let listed = registry.since(floor).await?;
    let tables = bronze().map(|(d, p)| (d.qualified_name(), p.table.clone()));
    let mut marks = LaneMarks::new(tables.collect());
    let found = mark(&listed, source.name, &mut marks, floor, newest).await?;
    if let Some(held_back) = &found.held_back {
        tracing::warn!(
            "{}: {held_back}; this run takes in the batches up to {} only",
            source.name,
            found.through
        );
        details.insert("held_back_by".into(), held_back.to_json());
    }
    Ok(found.through)
}

/// Registers each of the inputs `pinned` that has a `batch` column narrowed to the batches up
/// to `mark`: what every query of the run reads.
fn narrow_to(ctx: &SessionContext, pinned: &[(&TableDef, Readable)], mark: i64) -> Result<()> {
    for (def, table) in pinned.iter().filter(|(d, _)| d.column("batch").is_some()) {
        let upto = col("batch").lt_eq(lit(mark));
        let narrowed = ctx
            .read_table(table.provider.clone())
            .and_then(|df| df.filter(upto))
            .map_err(LakeError::query(def.qualified_name()))?
            .into_view();
        register_provider(ctx, def, narrowed)?;
    }
    Ok(())
}

/// What a table holds of bronze.
enum Held {
    /// Nothing recorded: it is rebuilt in full.
    Nothing,
    /// Everything up to this batch, as the last run over all changes recorded.
    Recorded(i64),
    /// Everything up to this batch, as the parts of the last split rebuilt it (newer than what
    /// was recorded).
    ByParts(i64),
}

impl Held {
    fn batch(&self) -> Option<i64> {
        match *self {
            Held::Nothing => None,
            Held::Recorded(b) | Held::ByParts(b) => Some(b),
        }
    }
}

/// Days from 0001-01-01 (day 1) to 1970-01-01: turns an Arrow date into a chrono one.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

/// The registered table or view `name`.
async fn frame(ctx: &SessionContext, name: &str) -> Result<DataFrame> {
    ctx.table(name).await.map_err(LakeError::query(name))
}
