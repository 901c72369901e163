//! A job run from start to exit code: configuration, logging, the one-line summary and the
//! machine-readable run record (appended to `meta.runs` and printed as the last stdout line).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{LakeArgs, LakeConfig};
use crate::error::{Exit, LakeError, Result};
use crate::guard::Fence;
use crate::lake::Lake;
use crate::lease::{Hold, Lease};
use crate::session::session;
use crate::telemetry;
use crate::write::{Commit, WriteMode, Written};
use lake_schema::{CATALOGUE, Layer, META_LANDED_OBJECTS, TableDef};

/// What a job is given: its run id, configuration and the opened lake.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub job: &'static str,
    pub started_at: DateTime<Utc>,
    pub cfg: LakeConfig,
    pub lake: Lake,
    started: Instant,
}

impl Run {
    /// Run start as microseconds since the epoch (for lineage columns).
    pub fn started_micros(&self) -> i64 {
        self.started_at.timestamp_micros()
    }

    /// A commit made by this run, with no application transaction yet.
    pub fn commit(&self) -> Commit {
        Commit::new(&self.id)
    }
}

/// A table or object a run read, with the version it saw.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// What a job reports when it ends.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Written>,
    /// Job-specific counts and facts (duplicates dropped, objects skipped, answer location…).
    pub details: Map<String, Value>,
}

impl Summary {
    pub fn detail(&mut self, key: &str, value: impl Into<Value>) {
        self.details.insert(key.to_string(), value.into());
    }
}

#[derive(Debug, Serialize)]
struct RunRecord<'a> {
    run_id: &'a str,
    job: &'a str,
    version: &'a str,
    started_at: String,
    finished_at: String,
    seconds: f64,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    exit_code: u8,
    lake: String,
    landing: String,
    /// Where each configuration value came from (flag or environment, file, default).
    config_origin: &'a std::collections::BTreeMap<&'static str, String>,
    arguments: Vec<String>,
    #[serde(flatten)]
    summary: &'a Summary,
}

/// A run id: the start time and a random part (`20261207T061357Z-1a2b3c4d`).
pub fn new_run_id(now: DateTime<Utc>) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &rand[..8])
}

/// Runs a job: sets up logging, resolves configuration, opens the lake, calls `body` under a
/// lease of the job for what `hold` says the run writes, then prints the summary line and the run record and turns the outcome into an
/// exit code.
pub async fn run_job<F, Fut>(
    job: &'static str,
    version: &'static str,
    args: &LakeArgs,
    hold: Hold,
    body: F,
) -> ExitCode
where
    F: FnOnce(Arc<Run>) -> Fut,
    Fut: Future<Output = Result<Summary>>,
{
    telemetry::init(args.log_format.unwrap_or_default());
    let run = match Run::start(job, args).await {
        Ok(run) => Arc::new(run),
        Err(e) => {
            tracing::error!("{job} cannot start: {e}");
            return e.exit_code().into();
        }
    };
    tracing::info!(run_id = %run.id, lake = %run.cfg.lake, landing = %run.cfg.landing, "{job} started");
    let outcome = under_lease(&run, hold, body).await;
    finish(&run, version, outcome).await
}

impl Run {
    /// Resolves the configuration and opens the lake.
    async fn start(job: &'static str, args: &LakeArgs) -> Result<Self> {
        let started = Instant::now();
        let started_at = Utc::now();
        let cfg = LakeConfig::resolve(args)?;
        let lake = Lake::open(&cfg).await?;
        Ok(Run {
            id: new_run_id(started_at),
            job,
            started_at,
            cfg,
            lake,
            started,
        })
    }
}

/// Runs `body` holding a lease of the job on the lake for `hold`; a run of the job meanwhile
/// that writes any of the same exits 4, and so does this run should it lose the lease.
async fn under_lease<F, Fut>(run: &Arc<Run>, hold: Hold, body: F) -> Result<Summary>
where
    F: FnOnce(Arc<Run>) -> Fut,
    Fut: Future<Output = Result<Summary>>,
{
    let held = hold_lease(&run.lake, run.job, hold, &run.id, run.cfg.lease_ttl).await?;
    let outcome = body(run.clone()).await;
    let outcome = match (outcome, held.problem()) {
        // whatever failed, the run failed because it lost its lease
        (Err(e), Some(problem)) => Err(LakeError::Superseded {
            message: format!("{problem} (what failed: {e})"),
        }),
        (outcome, _) => outcome,
    };
    held.release().await;
    outcome
}

/// A lease held by a run of a job on a lake, whose writes carry its fence until it is released.
#[derive(Debug)]
pub struct Held {
    lease: Lease,
    lake: Lake,
}

impl Held {
    /// Why the run must not write any more, if it must not.
    pub fn problem(&self) -> Option<String> {
        self.lease.health().problem()
    }

    pub async fn release(self) {
        self.lake.guard().set(None);
        self.lease.release().await;
    }
}

/// Takes the lease of `job` on `lake` for `hold`; fences off, in every table the job writes,
/// the commits of the runs it took over; and fences the lake's writes with it
/// ([`crate::guard`]).
pub async fn hold_lease(
    lake: &Lake,
    job: &str,
    hold: Hold,
    run_id: &str,
    ttl: std::time::Duration,
) -> Result<Held> {
    let taken = Lease::acquire(lake.root(), job, hold, run_id, ttl).await?;
    let fence = Fence::new(job, hold, taken.epoch, taken.lease.health());
    lake.guard().set(Some(Arc::new(fence)));
    let held = Held {
        lease: taken.lease,
        lake: lake.clone(),
    };
    let tables = written_by(job);
    match lake
        .fence_off(job, &tables, &taken.dead, taken.epoch, run_id)
        .await
    {
        Ok(()) => {
            held.lease.fenced(&taken.dead).await;
            Ok(held)
        }
        Err(e) => {
            held.release().await;
            Err(e)
        }
    }
}

/// The tables that runs of `job` write: the tables of its layer, and for bronze its claims.
pub fn written_by(job: &str) -> Vec<&'static TableDef> {
    let layer = Layer::ALL.into_iter().find(|l| l.as_str() == job);
    CATALOGUE
        .iter()
        .copied()
        .filter(|d| {
            let claims = job == "bronze" && d.is(&META_LANDED_OBJECTS);
            (Some(d.layer) == layer && d.layer != Layer::Meta) || claims
        })
        .collect()
}

/// Rows read from which a debug build says it is one: the default `make bronze silver gold`
/// builds the dev profile, fine for the sample data (a 2-million-play run took 48 s against
/// 8.5 s in release, README).
const DEBUG_BUILD_ROWS: u64 = 1_000_000;

/// Ends a run: the run record (appended to `meta.runs`, printed as the last stdout line), the
/// one-line summary on stderr, and the exit code.
async fn finish(run: &Run, version: &'static str, outcome: Result<Summary>) -> ExitCode {
    let seconds = run.started.elapsed().as_secs_f64();
    let empty = Summary::default();
    let (summary, error, exit) = match &outcome {
        Ok(summary) => match quarantine_over(summary, run.cfg.max_quarantine_ratio) {
            Some(message) => (summary, Some(message), Exit::TooMuchQuarantined),
            None => (summary, None, Exit::Ok),
        },
        Err(e) => (&empty, Some(e.to_string()), e.exit_code()),
    };
    let record = RunRecord {
        run_id: &run.id,
        job: run.job,
        version,
        started_at: run.started_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        seconds: (seconds * 1000.0).round() / 1000.0,
        outcome: if error.is_none() {
            "succeeded"
        } else {
            "failed"
        },
        error: error.clone(),
        exit_code: exit as u8,
        lake: run.cfg.lake.to_string(),
        landing: run.cfg.landing.to_string(),
        config_origin: &run.cfg.origin,
        arguments: std::env::args().collect(),
        summary,
    };
    let json = serde_json::to_string(&record).unwrap_or_default();
    // A failed store would fail this write too, after its retries: skip it then.
    let store_down = matches!(outcome, Err(LakeError::Store { .. }));
    if !store_down && let Err(e) = append_run_record(run, &record, &json).await {
        tracing::warn!("could not append the run record to meta.runs: {e}");
    }
    let job = run.job;
    match &error {
        None => tracing::info!(
            "{job} succeeded: {} rows in, {} rows out, {} rows quarantined, {seconds:.1} s",
            summary.rows_in,
            summary.rows_out,
            summary.rows_quarantined
        ),
        Some(e) => tracing::error!("{job} failed after {seconds:.1} s: {e}"),
    }
    if cfg!(debug_assertions) && summary.rows_in >= DEBUG_BUILD_ROWS {
        tracing::warn!(
            "{job} is a debug build, about 5× slower than a release build on data of this size: \
             build with `make build PROFILE=release` (README, Two commands)"
        );
    }
    println!("{json}");
    exit.into()
}

/// The complaint when the quarantined share of the rows read is over `max`.
fn quarantine_over(summary: &Summary, max: Option<f64>) -> Option<String> {
    let max = max?;
    let read = summary.rows_in.max(1) as f64;
    let share = summary.rows_quarantined as f64 / read;
    (share > max).then(|| {
        format!(
            "{} of {} rows read ({:.2}%) were quarantined, over --max-quarantine-ratio {max}; \
             the tables were written: see the quarantine tables for the reasons",
            summary.rows_quarantined,
            summary.rows_in,
            share * 100.0
        )
    })
}

/// Appends the run record to `meta.runs`, once: the commit carries a transaction of the job's
/// (`lake.runs.<job>.<n>`), so one retried after a lost answer conflicts with itself and is
/// found in the log instead of landing twice.
async fn append_run_record(run: &Run, record: &RunRecord<'_>, json: &str) -> Result<()> {
    let def = &lake_schema::META_RUNS;
    let ts = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp_micros())
            .unwrap_or_default()
    };
    let batch = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![record.run_id])),
            Arc::new(StringArray::from(vec![record.job])),
            Arc::new(StringArray::from(vec![record.version])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![ts(&record.started_at)]).with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![ts(&record.finished_at)]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![record.outcome])),
            Arc::new(Int64Array::from(vec![record.summary.rows_in as i64])),
            Arc::new(Int64Array::from(vec![record.summary.rows_out as i64])),
            Arc::new(Int64Array::from(vec![
                record.summary.rows_quarantined as i64,
            ])),
            Arc::new(StringArray::from(vec![json])),
        ],
    )
    .map_err(|e| LakeError::query("run record")(e.into()))?;
    let ctx = session(&run.cfg);
    let df = ctx
        .read_batch(batch)
        .map_err(LakeError::query("run record"))?;
    // one of a few transactions per job: concurrent runs seldom share one, and one that does
    // (and loses the race) appends again
    let bucket = crate::functions::fnv1a(run.id.bytes()) % RUN_RECORD_TRANSACTIONS;
    let commit = Commit::new(&run.id).unfenced().txn(
        format!("lake.runs.{}.{bucket}", run.job),
        run.started_micros(),
    );
    let append = || {
        run.lake
            .write(&ctx, def, df.clone(), WriteMode::Append, &commit)
    };
    match append().await {
        Ok(_) => Ok(()),
        Err(_) => append().await.map(|_| ()),
    }
}

/// How many transactions the run records of a job spread over.
const RUN_RECORD_TRANSACTIONS: u64 = 16;
