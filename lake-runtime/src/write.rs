//! Writing a table: every write is one Delta commit, which records the run that made it and the
//! application transactions that say what the table now holds. A run's commits carry its fence
//! and are refused once another run took its lease over ([`crate::guard`]); a commit whose answer
//! was lost is found in the table's log by its token instead of being made twice.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext, ident};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use lake_schema::{ColumnType, Encoding, TableDef};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::copies::Copies;
use crate::error::{LakeError, Result};
use crate::explain::explain_analyze;
use crate::guard::Fence;
use crate::lake::{Lake, catalogue_layout, layout};
use crate::lease::Dead;
use crate::stream::{BatchReceiver, OnceStream};

/// How a write treats what a table already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    Append,
    /// Replace the whole table in one commit (readers see the old or the new version).
    Overwrite,
    /// Replace the rows matching this predicate (Delta `replaceWhere`) in one commit, e.g.
    /// some partitions; every row written must match it.
    Replace(Expr),
}

impl WriteMode {
    /// Delta's name for it: a replace is an overwrite with a predicate.
    pub(crate) fn save_mode(&self) -> SaveMode {
        match self {
            WriteMode::Append => SaveMode::Append,
            WriteMode::Overwrite | WriteMode::Replace(_) => SaveMode::Overwrite,
        }
    }
}

/// The Delta application id under which every bronze table records the last batch it holds.
pub const BRONZE_TXN: &str = "lake.bronze";

/// The Delta application id under which each silver table records the last bronze batch it
/// includes.
pub const SILVER_TXN: &str = "lake.silver";

/// The Delta application id prefix under which each gold table records the version of each
/// silver table it was computed from (`lake.gold:silver.lastfm_listens`).
pub const GOLD_TXN: &str = "lake.gold";

/// What a commit records besides its rows: the run that made it, and the Delta application
/// transactions (`txn` actions) it sets. A transaction `(app_id, version)` says "this table
/// holds everything of `app_id` up to `version`" and commits atomically with the rows, which is
/// how a job re-run after a crash knows what each table already has.
///
/// A commit may also *require* something of the transactions of the snapshot it is built on
/// (see [`Requires`]): what the run read the table's state as. A commit that sets the same
/// transaction also fails when a concurrent commit set it (Delta's check), so that state
/// cannot change under it unseen.
#[derive(Debug, Clone)]
pub struct Commit {
    pub run_id: String,
    pub txns: Vec<(String, i64)>,
    pub requires: Vec<(String, Requires)>,
    /// Whether the run's fence applies: every commit of a run but its run record, which is
    /// appended after the lease is given back.
    pub fenced: bool,
}

/// What a commit requires of an application transaction of the table (`None`: absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requires {
    /// Exactly this version: what the run planned from.
    Exactly(Option<i64>),
    /// Below this version (or absent): e.g. a lane does not hold the batch being landed yet.
    Below(i64),
    /// At most this version (or absent): the table holds nothing newer than what the run read.
    AtMost(i64),
}

impl Requires {
    fn holds(self, held: Option<i64>) -> bool {
        match self {
            Requires::Exactly(v) => held == v,
            Requires::Below(v) => held.is_none_or(|h| h < v),
            Requires::AtMost(v) => held.is_none_or(|h| h <= v),
        }
    }
}

impl std::fmt::Display for Requires {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requires::Exactly(None) => write!(f, "none"),
            Requires::Exactly(Some(v)) => write!(f, "{v}"),
            Requires::Below(v) => write!(f, "below {v}"),
            Requires::AtMost(v) => write!(f, "at most {v}"),
        }
    }
}

impl Commit {
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            txns: Vec::new(),
            requires: Vec::new(),
            fenced: true,
        }
    }

    pub fn txn(mut self, app_id: impl Into<String>, version: i64) -> Self {
        self.txns.push((app_id.into(), version));
        self
    }

    /// Requires `requires` of the table's transaction `app_id` when the commit is built.
    pub fn requires(mut self, app_id: impl Into<String>, requires: Requires) -> Self {
        self.requires.push((app_id.into(), requires));
        self
    }

    /// A commit the run's fence does not apply to (it still carries its own transactions).
    pub fn unfenced(self) -> Self {
        Self {
            fenced: false,
            ..self
        }
    }
}

/// What one write adds to its commit: its token, and the fence of its run.
#[derive(Debug, Clone)]
pub(crate) struct Stamp {
    /// Finds the commit in the table's log when its answer was lost.
    pub token: String,
    pub fence: Option<Arc<Fence>>,
}

impl Stamp {
    /// The commit's properties: `metadata`, the run id and the token in its commit info; its
    /// transactions and the fence's.
    pub(crate) fn properties(
        &self,
        commit: &Commit,
        metadata: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> CommitProperties {
        let ids = [
            ("lake.run_id".to_string(), serde_json::json!(commit.run_id)),
            (COMMIT_TOKEN.to_string(), serde_json::json!(self.token)),
        ];
        let fence = self
            .fence
            .iter()
            .map(|f| Transaction::new(&f.app_id, f.epoch));
        // a commit that sets no transaction of its own gets one: a retry of it after a lost
        // answer then conflicts with itself instead of landing twice
        let own = (commit.txns.is_empty() && self.fence.is_none())
            .then(|| Transaction::new(format!("lake.writer.{}", commit.run_id), 0));
        CommitProperties::default()
            .with_metadata(ids.into_iter().chain(metadata))
            .with_application_transactions(
                commit
                    .txns
                    .iter()
                    .map(|(app, v)| Transaction::new(app, *v))
                    .chain(fence)
                    .chain(own)
                    .collect(),
            )
    }
}

/// The commit info key of a write's token.
const COMMIT_TOKEN: &str = "lake.commit";

/// What a write committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub table: String,
    pub version: u64,
    pub rows: u64,
}

impl Lake {
    /// Writes `df` to the table in one commit. Columns are taken by name and cast to the
    /// catalogue's types, so a query only has to produce the right names.
    pub async fn write(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        self.write_distinct(ctx, def, df, mode, commit, None).await
    }

    /// [`Lake::write`] keeping, with `copies`, one of each row's copies: the first, in their
    /// order (a partitioned write finds them in the sort by partition it makes anyway). The
    /// query can run twice: it is explained first when `LAKE_EXPLAIN_ANALYZE` names its table.
    pub async fn write_distinct(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        commit: &Commit,
        copies: Option<&Copies>,
    ) -> Result<Written> {
        if !self.snapshot_scans {
            explain_analyze(&def.qualified_name(), &df).await;
        }
        self.write_query(ctx, def, df, mode, commit, copies).await
    }

    /// [`Lake::write`] of a query that may be a stream read once (so it is not explained).
    async fn write_query(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        commit: &Commit,
        copies: Option<&Copies>,
    ) -> Result<Written> {
        #[cfg(feature = "cluster")]
        if self.snapshot_scans {
            let df = match copies {
                Some(c) => c.keep_first(df, def.partition_by, &def.qualified_name())?,
                None => df,
            };
            return self.write_from_cluster(def, df, mode, commit).await;
        }
        let name = def.qualified_name();
        crate::fault::point(&format!("committing:{name}"));
        let table = self.table_or_create(def).await?;
        let stamp = Stamp {
            token: uuid::Uuid::new_v4().simple().to_string(),
            fence: self.guard().fence().filter(|_| commit.fenced),
        };
        if let Some(fence) = &stamp.fence {
            check_fence(fence, &name, &table).await?;
        }
        check_requirements(commit, &name, &table).await?;
        let base = table.version();
        let schema_changed = self.schema_changed(def, &table, &mode)?;
        let clustered = !schema_changed && crate::clustered::applies(def, &mode);
        let df = match copies {
            Some(c) if clustered => conform_keeping(df, def, &c.extra_columns(def))?,
            Some(c) => conform(c.keep_first(df, def.partition_by, &name)?, def)?,
            None => conform(df, def)?,
        };
        let props = writer_properties(&self.parquet, def);
        let written = if clustered {
            let target = (def, &table, copies);
            crate::clustered::write(ctx, target, df, props, &mode, commit, &stamp).await
        } else {
            let write = Deltalake {
                table,
                props,
                mode,
                schema_changed,
            };
            write.run(ctx, def, df, commit, &stamp).await
        };
        let written = match written {
            Ok(written) => written,
            Err(e) => self.settle(def, base, (commit, &stamp), e).await?,
        };
        tracing::info!(table = %name, version = written.version, rows = written.rows, "committed");
        crate::fault::point(&format!("committed:{name}"));
        Ok(written)
    }

    /// What a failed write means: its commit landed after all (the store's answer was lost and
    /// the retry found it), or the run lost its lease (exit 4), or the error as it is.
    async fn settle(
        &self,
        def: &TableDef,
        base: Option<u64>,
        (commit, stamp): (&Commit, &Stamp),
        error: LakeError,
    ) -> Result<Written> {
        if let Ok(Some(written)) = self.find_commit(def, base, &stamp.token).await {
            tracing::warn!(
                table = %written.table,
                version = written.version,
                "the commit landed though the store's answer was lost: it is not made again"
            );
            return Ok(written);
        }
        if let Some(message) = self.guard().problem() {
            return Err(LakeError::Superseded { message });
        }
        // the state the commit was built on changed under it: it is another run's work now
        if let Ok(Some(table)) = self.table(def).await {
            let name = def.qualified_name();
            if let Some(fence) = &stamp.fence
                && let Err(fenced @ LakeError::Superseded { .. }) =
                    check_fence(fence, &name, &table).await
            {
                return Err(fenced);
            }
            if let Err(moved @ LakeError::Superseded { .. }) =
                check_requirements(commit, &name, &table).await
            {
                return Err(moved);
            }
        }
        Err(error)
    }

    /// The commit carrying `token` after version `base` of the table, if it landed.
    async fn find_commit(
        &self,
        def: &TableDef,
        base: Option<u64>,
        token: &str,
    ) -> Result<Option<Written>> {
        let Some(table) = self.table(def).await? else {
            return Ok(None);
        };
        let name = def.qualified_name();
        let latest = table.version().unwrap_or_default();
        let from = base.map_or(0, |b| b + 1);
        for version in (from..=latest).rev().take(LOST_COMMIT_SEARCH) {
            let entry = table
                .log_store()
                .read_commit_entry(version)
                .await
                .map_err(LakeError::delta(&name))?;
            let Some(bytes) = entry else { continue };
            if let Some(rows) = commit_rows(&bytes, token) {
                return Ok(Some(Written {
                    table: name,
                    version,
                    rows,
                }));
            }
        }
        Ok(None)
    }

    /// Fences the runs of `dead` off in every table of `defs` that exists, before this run
    /// reads any of them: each table gets a commit of nothing but each dead run's fence at
    /// `epoch`, higher than any epoch the dead runs hold ([`crate::guard`]).
    pub async fn fence_off(
        &self,
        job: &str,
        defs: &[&TableDef],
        dead: &[Dead],
        epoch: u64,
        run_id: &str,
    ) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let fences: Vec<String> = dead
            .iter()
            .map(|d| crate::guard::app_id(job, d.hold))
            .collect();
        for def in defs {
            let name = def.qualified_name();
            for attempt in 1..=FENCE_ATTEMPTS {
                let Some(table) = self.table(def).await? else {
                    break;
                };
                match fence_table(&table, &fences, epoch, run_id).await {
                    Ok(()) => break,
                    Err(e) if attempt < FENCE_ATTEMPTS => {
                        tracing::warn!(table = %name, "fencing off a dead run: {e}; trying again")
                    }
                    Err(e) => return Err(LakeError::delta(name)(e)),
                }
            }
        }
        let runs: Vec<&str> = dead.iter().map(|d| d.run_id.as_str()).collect();
        tracing::info!(
            tables = defs.len(),
            "fenced off the commits of {}: they are refused from now on",
            runs.join(", ")
        );
        Ok(())
    }

    /// Whether the table's columns or partition columns differ from the catalogue's: only an
    /// overwrite may then replace its schema; anything else stops with what to do.
    fn schema_changed(&self, def: &TableDef, table: &DeltaTable, mode: &WriteMode) -> Result<bool> {
        let have = layout(def, table)?;
        let want = catalogue_layout(def);
        let changed = have != want;
        if changed && *mode != WriteMode::Overwrite {
            return Err(LakeError::delta(def.qualified_name())(
                DeltaTableError::Generic(format!(
                    "the table at {} has columns ({}) but this version of the jobs writes ({}); \
                     move the table away or rebuild it from the layer below",
                    self.table_url(def)?,
                    have.join(", "),
                    want.join(", ")
                )),
            ));
        }
        Ok(changed)
    }

    /// Writes a stream of batches (sent by a producer, e.g. a parser thread) to the table in
    /// one commit, without holding the stream in memory. The batches must have the table's
    /// catalogue schema.
    pub async fn write_stream(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        batches: BatchReceiver,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        let partition = OnceStream::from_channel(def.arrow_schema(), batches);
        self.write_once(ctx, def, partition, mode, commit).await
    }

    /// Writes the rows of a one-shot stream (see [`Lake::write`]).
    async fn write_once(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        partition: OnceStream,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        let schema = partition.schema().clone();
        let source = StreamingTable::try_new(schema, vec![Arc::new(partition)])
            .map_err(LakeError::query(def.qualified_name()))?;
        let df = ctx
            .read_table(Arc::new(source))
            .map_err(LakeError::query(def.qualified_name()))?;
        self.write_query(ctx, def, df, mode, commit, None).await
    }

    /// Writes the rows of a running query (`rows`, conformed to the table as [`Lake::write`]
    /// does) in one commit: for a caller that reads the rows on their way too, e.g. into a
    /// file. The write runs in `ctx`, or in a session of this process when the query ran on a
    /// cluster.
    pub async fn write_rows(
        &self,
        ctx: &SessionContext,
        def: &TableDef,
        rows: SendableRecordBatchStream,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        if self.snapshot_scans {
            return self.write_here(def, rows, mode, commit).await;
        }
        let partition = OnceStream::from_stream(rows);
        self.write_once(ctx, def, partition, mode, commit).await
    }

    /// [`Lake::write`] of a query that runs on a cluster: deltalake's write plan cannot travel
    /// there, so the query runs there and its rows stream back into a write planned here.
    #[cfg(feature = "cluster")]
    async fn write_from_cluster(
        &self,
        def: &TableDef,
        df: DataFrame,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        let name = def.qualified_name();
        let stream = conform(df, def)?
            .execute_stream()
            .await
            .map_err(LakeError::query(&name))?;
        self.write_here(def, stream, mode, commit).await
    }

    /// Writes the rows of a query that ran elsewhere (a cluster) in a session of this process.
    async fn write_here(
        &self,
        def: &TableDef,
        stream: SendableRecordBatchStream,
        mode: WriteMode,
        commit: &Commit,
    ) -> Result<Written> {
        // deltalake's write plan needs its planner
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .build();
        let local = SessionContext::new_with_state(state);
        let mut here = self.clone();
        here.snapshot_scans = false;
        let partition = OnceStream::from_stream(stream);
        Box::pin(here.write_once(&local, def, partition, mode, commit)).await
    }
}

/// The lake's Parquet settings with the table's column encodings from the catalogue.
fn writer_properties(lake: &WriterProperties, def: &TableDef) -> WriterProperties {
    def.columns
        .iter()
        .filter(|c| c.encoding == Encoding::Delta)
        .fold(lake.clone().into_builder(), |props, c| {
            let encoding = match c.ty {
                ColumnType::Text => parquet::basic::Encoding::DELTA_BYTE_ARRAY,
                _ => parquet::basic::Encoding::DELTA_BINARY_PACKED,
            };
            let path = ColumnPath::from(c.name);
            props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, encoding)
        })
        .build()
}

/// deltalake's write: for unpartitioned tables, replaces of rows within partitions, and
/// commits that replace the table's schema.
struct Deltalake {
    table: DeltaTable,
    props: WriterProperties,
    mode: WriteMode,
    schema_changed: bool,
}

impl Deltalake {
    async fn run(
        self,
        ctx: &SessionContext,
        def: &TableDef,
        df: DataFrame,
        commit: &Commit,
        stamp: &Stamp,
    ) -> Result<Written> {
        let name = def.qualified_name();
        let mut builder = self
            .table
            .write(Vec::<RecordBatch>::new())
            .with_writer_properties(self.props);
        if let WriteMode::Replace(predicate) = &self.mode {
            builder = builder.with_replace_where(predicate.clone());
        }
        if self.schema_changed {
            tracing::info!(table = %name, "the catalogue changed this table's columns: replacing its schema in this commit");
            builder = builder
                .with_schema_mode(SchemaMode::Overwrite)
                .with_partition_columns(def.partition_by.iter().copied());
        }
        let table = builder
            .with_input_plan(df.logical_plan().clone())
            .with_session_state(Arc::new(ctx.state()))
            .with_save_mode(self.mode.save_mode())
            .with_commit_properties(stamp.properties(commit, []))
            .await
            .map_err(LakeError::delta(name.clone()))?;
        Ok(Written {
            version: table.version().unwrap_or_default(),
            rows: last_commit_rows(&table).await.unwrap_or(0),
            table: name,
        })
    }
}

/// Refuses a commit of the run holding `fence` to `table` as loaded: when its lease has a
/// problem, or another run fenced it off (the table holds its fence at a higher epoch).
async fn check_fence(fence: &Fence, name: &str, table: &DeltaTable) -> Result<()> {
    if let Some(message) = fence.health.problem() {
        return Err(LakeError::Superseded { message });
    }
    let held = table
        .snapshot()
        .map_err(LakeError::delta(name))?
        .transaction_version(table.log_store().as_ref(), &fence.app_id)
        .await
        .map_err(LakeError::delta(name))?;
    match held {
        Some(epoch) if epoch > fence.epoch => Err(LakeError::Superseded {
            message: format!(
                "{name}: another run took over this run's lease and fenced it off (the table \
                 holds {} at epoch {epoch}, this run has {}): this run stalled for longer than \
                 its lease's TTL. It stopped before committing; what it committed before is kept. \
                 Run it again (exit 4: retry later)",
                fence.app_id, fence.epoch
            ),
        }),
        _ => Ok(()),
    }
}

/// Refuses a commit whose requirements the table as loaded does not meet: another run wrote
/// what this one was about to write (it stalled, or a run ran beside it).
async fn check_requirements(commit: &Commit, name: &str, table: &DeltaTable) -> Result<()> {
    for (app_id, requires) in &commit.requires {
        let held = table
            .snapshot()
            .map_err(LakeError::delta(name))?
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(LakeError::delta(name))?;
        if !requires.holds(held) {
            let held = held.map_or("none".to_string(), |h| h.to_string());
            return Err(LakeError::Superseded {
                message: format!(
                    "{name}: the table holds {app_id} at {held} where this run requires \
                     {requires}: another run wrote it since this run read it (this run stalled, \
                     or another ran beside it). This run stopped before committing; what it \
                     committed before is kept. Run it again (exit 4: retry later)"
                ),
            });
        }
    }
    Ok(())
}

/// Versions searched back for a commit whose answer was lost.
const LOST_COMMIT_SEARCH: usize = 100;

/// Times a table is fenced before the run gives up.
const FENCE_ATTEMPTS: u32 = 5;

/// The rows a commit added, when its log entry carries `token` (`None`: another commit).
fn commit_rows(entry: &[u8], token: &str) -> Option<u64> {
    let text = std::str::from_utf8(entry).ok()?;
    text.lines().find_map(|line| {
        let action: serde_json::Value = serde_json::from_str(line).ok()?;
        let info = action.get("commitInfo")?;
        (info.get(COMMIT_TOKEN)?.as_str()? == token).then(|| {
            info.get("operationMetrics")
                .and_then(|m| m.get("num_added_rows"))
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(0)
        })
    })
}

/// Commits `fences` at `epoch` to `table`, those it does not hold higher already.
async fn fence_table(
    table: &DeltaTable,
    fences: &[String],
    epoch: i64,
    run_id: &str,
) -> std::result::Result<(), DeltaTableError> {
    let snapshot = table.snapshot()?;
    let mut txns = Vec::new();
    for app_id in fences {
        let held = snapshot
            .transaction_version(table.log_store().as_ref(), app_id)
            .await?;
        if held.is_none_or(|h| h < epoch) {
            txns.push(Transaction::new(app_id, epoch));
        }
    }
    if txns.is_empty() {
        return Ok(());
    }
    let actions = txns.into_iter().map(Action::Txn).collect();
    let properties = CommitProperties::default().with_metadata([
        ("lake.run_id".to_string(), serde_json::json!(run_id)),
        ("lake.fence".to_string(), serde_json::json!(fences)),
    ]);
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await?;
    Ok(())
}

/// Number of rows the table's latest commit added, from its commit metrics.
async fn last_commit_rows(table: &DeltaTable) -> Option<u64> {
    let mut history = table.history(Some(1));
    let info = history.next().await?.ok()?;
    info.info
        .get("operationMetrics")
        .and_then(|m| m.get("num_added_rows"))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
}

/// Selects the catalogue's columns from `df` by name, cast to the catalogue's types (string views
/// stay views: they are the same strings to Delta and Parquet).
pub fn conform(df: DataFrame, def: &TableDef) -> Result<DataFrame> {
    conform_keeping(df, def, &[])
}

/// [`conform`], keeping the columns `extra` of `df` after the catalogue's as they are.
fn conform_keeping(df: DataFrame, def: &TableDef, extra: &[&str]) -> Result<DataFrame> {
    let have: HashSet<&str> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let missing: Vec<&str> = def
        .columns
        .iter()
        .map(|c| c.name)
        .filter(|n| !have.contains(n))
        .collect();
    if !missing.is_empty() {
        return Err(LakeError::query(def.qualified_name())(
            datafusion::error::DataFusionError::Plan(format!(
                "the query for {} does not produce column(s) {}",
                def.qualified_name(),
                missing.join(", ")
            )),
        ));
    }
    let schema = df.schema().clone();
    let exprs = def.columns.iter().map(|c| {
        let want = c.ty.arrow();
        // string views (what scans produce) are written as they are: Parquet stores both
        // string types alike, and a cast would copy every string
        let is_view = schema
            .field_with_unqualified_name(c.name)
            .is_ok_and(|f| f.data_type() == &DataType::Utf8View);
        if want == DataType::Utf8 && is_view {
            ident(c.name)
        } else {
            datafusion::logical_expr::cast(ident(c.name), want).alias(c.name)
        }
    });
    let exprs = exprs.chain(extra.iter().map(|c| ident(*c)));
    df.select(exprs.collect::<Vec<_>>())
        .map_err(LakeError::query(def.qualified_name()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    use futures::stream::BoxStream;
    use lake_schema::META_LANDED_OBJECTS;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };

    use super::*;
    use crate::lease::{Health, Hold};
    use crate::store::Location;

    /// A store that loses the answer to the first commit after a table's creation: the commit
    /// lands, and the writer hears what a retry of the same request hears, that it exists.
    #[derive(Debug)]
    struct LosesAnAnswer {
        inner: object_store::local::LocalFileSystem,
        lost: AtomicBool,
    }

    impl std::fmt::Display for LosesAnAnswer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "LosesAnAnswer")
        }
    }

    #[async_trait]
    impl ObjectStore for LosesAnAnswer {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let path = location.as_ref();
            let commit = path.contains("_delta_log/") && path.ends_with(".json");
            let creation = path.ends_with("00000000000000000000.json");
            let put = self.inner.put_opts(location, payload, opts).await?;
            if commit && !creation && !self.lost.swap(true, Ordering::SeqCst) {
                return Err(object_store::Error::AlreadyExists {
                    path: path.to_string(),
                    source: "the answer to the first attempt was lost".into(),
                });
            }
            Ok(put)
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lake-write-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    /// The jobs' session (deltalake's planner included).
    fn session() -> SessionContext {
        let cfg = crate::LakeConfig::resolve(&crate::LakeArgs::default());
        crate::session(&cfg.unwrap_or_else(|e| panic!("{e}")))
    }

    fn lake_over(dir: &std::path::Path, store: Arc<dyn ObjectStore>) -> Lake {
        let url = url::Url::from_directory_path(dir).unwrap_or_else(|()| panic!("a path"));
        Lake::over(Location::with_store(url, store).unwrap_or_else(|e| panic!("{e}")))
    }

    /// `n` claims as rows of `meta.landed_objects`.
    fn claims(ctx: &SessionContext, n: usize) -> DataFrame {
        let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
        let batch = RecordBatch::try_new(
            META_LANDED_OBJECTS.arrow_schema(),
            vec![
                text(vec!["lastfm".into(); n]),
                text((0..n).map(|i| format!("file:///landing/{i}.tsv")).collect()),
                Arc::new(Int64Array::from(vec![1; n])),
                text(vec!["etag".into(); n]),
                Arc::new(Int64Array::from(vec![1; n])),
                text(vec!["run".into(); n]),
                Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ctx.read_batch(batch).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn rows(lake: &Lake) -> usize {
        let ctx = session();
        lake.register(&ctx, &META_LANDED_OBJECTS)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let df = ctx.table("meta.landed_objects").await;
        df.unwrap_or_else(|e| panic!("{e}"))
            .count()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn fence(epoch: u64) -> Arc<Fence> {
        let renewed = crate::lease::since_boot();
        let health = Health::new("test".into(), Duration::from_secs(600), renewed);
        Arc::new(Fence::new("bronze", Hold::All, epoch, Arc::new(health)))
    }

    #[tokio::test]
    async fn a_commit_whose_answer_was_lost_is_found_in_the_log_not_made_twice() {
        let dir = temp("lost");
        let store = Arc::new(LosesAnAnswer {
            inner: object_store::local::LocalFileSystem::new(),
            lost: AtomicBool::new(false),
        });
        let lake = lake_over(&dir, store.clone());
        let ctx = session();
        // an append without a fence, as the run record is: its own transaction marks it
        let commit = Commit::new("run-1")
            .unfenced()
            .txn("lake.runs.bronze.all", 1);
        let def = &META_LANDED_OBJECTS;
        let written = lake
            .write(&ctx, def, claims(&ctx, 3), WriteMode::Append, &commit)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.lost.load(Ordering::SeqCst), "an answer was lost");
        assert_eq!((written.version, written.rows), (1, 3));
        assert_eq!(rows(&lake).await, 3, "the rows landed once");
        // and a run's fenced commit, whose fence is its transaction
        store.lost.store(false, Ordering::SeqCst);
        lake.guard().set(Some(fence(1)));
        let written = lake
            .write(
                &ctx,
                def,
                claims(&ctx, 2),
                WriteMode::Append,
                &Commit::new("run-2"),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((written.version, written.rows), (2, 2));
        assert_eq!(rows(&lake).await, 5);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_run_fenced_off_by_a_takeover_cannot_commit_whatever_snapshot_it_built_on() {
        let dir = temp("fenced");
        let lake = lake_over(&dir, Arc::new(object_store::local::LocalFileSystem::new()));
        let ctx = session();
        let def = &META_LANDED_OBJECTS;
        let (a, b) = (fence(1), fence(2));
        lake.guard().set(Some(a.clone()));
        lake.write(
            &ctx,
            def,
            claims(&ctx, 3),
            WriteMode::Append,
            &Commit::new("a"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        // run a stalls with a snapshot loaded; run b takes its lease over and fences it off
        let stalled = lake.table(def).await.ok().flatten();
        let stalled = stalled.unwrap_or_else(|| panic!("the table"));
        let dead = crate::lease::Dead {
            run_id: "a".into(),
            hold: Hold::All,
            seq: 1,
            ttl_ms: 600_000,
        };
        lake.guard().set(Some(b));
        lake.fence_off("bronze", &[def], &[dead], 2, "b")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // a wakes up: a commit built on a snapshot after the takeover is refused…
        lake.guard().set(Some(a.clone()));
        let refused = lake
            .write(
                &ctx,
                def,
                claims(&ctx, 1),
                WriteMode::Append,
                &Commit::new("a"),
            )
            .await;
        match refused {
            Err(LakeError::Superseded { message }) => {
                assert!(message.contains("fenced it off"), "{message}")
            }
            other => panic!("a fenced-off run committed: {other:?}"),
        }
        // …and so is one it built on the snapshot it loaded before: Delta's check sees the
        // fence's transaction changed under it
        let stamp = Stamp {
            token: "t".into(),
            fence: Some(a),
        };
        let late = CommitBuilder::from(stamp.properties(&Commit::new("a"), []))
            .with_actions(vec![])
            .build(
                Some(stalled.snapshot().unwrap_or_else(|e| panic!("{e}"))),
                stalled.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: None,
                    predicate: None,
                },
            )
            .await;
        let error = late.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("ransaction"),
            "the late commit landed: {error}"
        );
        assert_eq!(rows(&lake).await, 3, "what it committed before stays");
        let _ = std::fs::remove_dir_all(dir);
    }
}
