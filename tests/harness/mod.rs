//! The randomized fault harness (`make chaos`; a fixed slice of seeds in `make test`).
//!
//! From a seed it draws a schedule ([`schedule`]) over a generated landing of every source:
//! deliveries arriving between runs; plain runs, shards, parts, backfills and full refreshes of
//! bronze, silver and gold, some started together; each run with a fault or none: a crash at a
//! named point (around every claim and commit), SIGKILL at a random moment, a stall (SIGSTOP,
//! at a named point or a random moment) past its lease's TTL while the schedule goes on, or, on
//! LocalStack, its store failing for a while (down, 503, hanging, losing answers). Then it runs
//! the jobs cleanly to quiescence and checks the lake's promises against one clean run over the
//! same landing ([`check`]): every table holds the same rows (as multisets; run ids, times and
//! batch numbers aside), every answer file is the same, no landing object was reported landed by
//! two successful runs, no run panicked or exited with a code it should not. A failing seed
//! prints the command that replays it.

pub mod schedule;
pub mod world;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schedule::{Fault, Job, Launch, Step, Variant};
use world::{Ended, Pool, Proc, Store, World};

/// The lake one clean run of bronze, silver and gold makes of the whole pool.
pub struct Clean {
    pub tables: BTreeMap<String, Vec<String>>,
    pub answers: BTreeMap<String, Vec<u8>>,
}

impl Clean {
    pub fn make(store: &Store, pool: &Pool, dir: PathBuf, mode: Mode) -> Clean {
        let world = World::new(store, dir.clone(), "chaos-clean", mode.compat);
        let all: Vec<usize> = (0..pool.objects.len()).collect();
        world.deliver(pool, &all);
        for job in [Job::Bronze, Job::Silver, Job::Gold] {
            let ended = world.start(&plain(job)).wait();
            assert_eq!(
                ended.code,
                0,
                "the clean {} run failed:\n{}",
                job.name(),
                ended.stderr
            );
        }
        let clean = Clean {
            tables: world.tables(),
            answers: world.answers(),
        };
        let _ = std::fs::remove_dir_all(dir);
        clean
    }
}

fn plain(job: Job) -> Launch {
    Launch {
        job,
        variant: Variant::Plain,
        fault: Fault::None,
    }
}

/// What a seed did and found.
pub struct Outcome {
    pub seed: u64,
    pub store: &'static str,
    /// Each step, and how each of its runs ended.
    pub log: Vec<String>,
    pub problems: Vec<String>,
    pub dir: PathBuf,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The command that replays this seed.
    pub fn replay(&self) -> String {
        format!("make chaos SEED={} STORE={}", self.seed, self.store)
    }

    pub fn report(&self) -> String {
        let mut out = format!("seed {} on {}:\n", self.seed, self.store);
        for line in &self.log {
            let _ = writeln!(out, "  {line}");
        }
        for problem in &self.problems {
            let _ = writeln!(out, "  PROBLEM: {problem}");
        }
        if !self.passed() {
            let _ = writeln!(
                out,
                "  the lake and each run's log (logs/) are kept in {}\n  replay: {}",
                self.dir.display(),
                self.replay()
            );
        }
        out
    }
}

/// Options of a seed's run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Only what earlier versions of the jobs had: crashes at `committed:` points, SIGKILL,
    /// store faults; no stalls (their leases could not be made short) and no new points.
    pub compat: bool,
}

/// The schedule of seed `seed` over `pool` (with store faults when it runs on S3).
pub fn plan(seed: u64, pool: &Pool, s3: bool, mode: Mode) -> Vec<Step> {
    let faults = schedule::Faults {
        stalls: !mode.compat,
        store: s3,
        compat: mode.compat,
    };
    schedule::draw(seed, &pool.objects, faults)
}

/// Runs seed `seed` on `store` in `dir` and checks the lake against `clean`.
pub fn run_seed(
    seed: u64,
    store: &Store,
    pool: &Pool,
    clean: &Clean,
    dir: PathBuf,
    mode: Mode,
) -> Outcome {
    let plan = plan(seed, pool, matches!(store, Store::S3(_)), mode);
    let world = World::new(store, dir.clone(), &format!("chaos-{seed}"), mode.compat);
    let mut outcome = Outcome {
        seed,
        store: store.name(),
        log: Vec::new(),
        problems: Vec::new(),
        dir,
    };
    let mut background: Vec<Proc> = Vec::new();
    let mut ended: Vec<Ended> = Vec::new();
    for step in &plan {
        // stalled runs wake up when their time has come, while the schedule goes on
        for p in &mut background {
            p.resume_if_due();
        }
        match step {
            Step::Deliver(objects) => {
                world.deliver(pool, objects);
                outcome.log.push(step.to_string());
            }
            Step::Run(launches) => {
                let solo = launches.len() == 1 && background.is_empty();
                let mut procs: Vec<Proc> = launches.iter().map(|l| world.start(l)).collect();
                loop {
                    let mut settled = true;
                    for p in &mut procs {
                        settled &= p.poll() || p.stalled();
                    }
                    for p in &mut background {
                        p.poll();
                    }
                    if settled {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let mut line = step.to_string();
                for p in procs {
                    if p.stalled() {
                        line.push_str(&format!("  → {} stalled", p.label));
                        background.push(p);
                        continue;
                    }
                    let done = p.wait();
                    line.push_str(&format!("  → exit {}{}", done.code, why(&done)));
                    check_exit(&done, solo, &mut outcome.problems);
                    ended.push(done);
                }
                outcome.log.push(line);
            }
        }
        for p in &mut background {
            p.poll();
        }
        let (finished, still): (Vec<Proc>, Vec<Proc>) =
            background.into_iter().partition(Proc::finished);
        background = still;
        for p in finished {
            woke_up(p, &mut outcome, &mut ended);
        }
    }
    for p in background {
        woke_up(p, &mut outcome, &mut ended);
    }
    ended.extend(quiesce(&world, &mut outcome));
    if outcome.problems.is_empty() {
        check(&world, clean, &ended, &mut outcome.problems);
    }
    if outcome.passed() {
        let _ = std::fs::remove_dir_all(&outcome.dir);
    } else {
        keep_logs(&outcome.dir, &ended);
    }
    outcome
}

/// Collects a run that stalled and ran on in the background.
fn woke_up(p: Proc, outcome: &mut Outcome, ended: &mut Vec<Ended>) {
    let done = p.wait();
    outcome.log.push(format!(
        "(woke up) {} → exit {}{}",
        done.label,
        done.code,
        why(&done)
    ));
    check_exit(&done, false, &mut outcome.problems);
    ended.push(done);
}

/// Writes each run's log next to the lake a failing seed leaves, `logs/<n> <label>.log`, in the
/// order the runs ended.
fn keep_logs(dir: &Path, ended: &[Ended]) {
    let logs = dir.join("logs");
    let _ = std::fs::create_dir_all(&logs);
    for (n, done) in ended.iter().enumerate() {
        let name: String = done
            .label
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let _ = std::fs::write(logs.join(format!("{n:02}-{name}.log")), &done.stderr);
    }
}

/// Runs bronze, silver and gold plainly until each succeeds: nothing else runs now, so each
/// must (a run may wait for a lease a killed run left, exit 4, and go ahead when retried).
fn quiesce(world: &World, outcome: &mut Outcome) -> Vec<Ended> {
    let mut ended = Vec::new();
    for job in [Job::Bronze, Job::Silver, Job::Gold] {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let done = world.start(&plain(job)).wait();
            let code = done.code;
            outcome
                .log
                .push(format!("quiescence: {} → exit {code}", job.name()));
            if done.stderr.contains("panicked") {
                outcome.problems.push(panicked(&done));
            }
            ended.push(done);
            match code {
                0 => break,
                4 if attempts < 5 => std::thread::sleep(Duration::from_secs(1)),
                _ => {
                    let last = ended.last().map(|e| tail(&e.stderr)).unwrap_or_default();
                    outcome.problems.push(format!(
                        "quiescence: {} exited {code} with nothing else running:\n{last}",
                        job.name()
                    ));
                    return ended;
                }
            }
        }
    }
    ended
}

/// A run's exit must be one it may have: never a panic, a configuration error (2) or too much
/// quarantine (3); exactly 0 for a run without a fault that ran alone.
fn check_exit(done: &Ended, solo: bool, problems: &mut Vec<String>) {
    if done.stderr.contains("panicked") {
        problems.push(panicked(done));
    }
    let allowed = match (&done.fault, solo) {
        (Fault::None, true) => done.code == 0,
        _ => matches!(done.code, 0 | 1 | 4 | -1),
    };
    if !allowed {
        problems.push(format!(
            "{} exited {}:\n{}",
            done.label,
            done.code,
            tail(&done.stderr)
        ));
    }
}

/// The promises, against the clean run's lake.
fn check(world: &World, clean: &Clean, ended: &[Ended], problems: &mut Vec<String>) {
    let tables = world.tables();
    for (table, want) in &clean.tables {
        let got = tables.get(table).cloned().unwrap_or_default();
        if &got != want {
            let extra: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(2).collect();
            let missing: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(2).collect();
            problems.push(format!(
                "{table} has {} rows where a clean run has {}; extra {extra:?}, missing {missing:?}",
                got.len(),
                want.len()
            ));
        }
    }
    let answers = world.answers();
    if answers.keys().ne(clean.answers.keys()) {
        problems.push(format!(
            "answer files {:?}, a clean run's {:?}",
            answers.keys().collect::<Vec<_>>(),
            clean.answers.keys().collect::<Vec<_>>()
        ));
    }
    for (name, want) in &clean.answers {
        if answers.get(name).is_some_and(|got| got != want) {
            problems.push(format!("the answer file {name} differs from a clean run's"));
        }
    }
    let mut landed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for done in ended.iter().filter(|e| e.code == 0) {
        for object in landed_by(&done.record) {
            landed.entry(object).or_default().push(done.label.clone());
        }
    }
    for (object, runs) in landed.iter().filter(|(_, runs)| runs.len() > 1) {
        problems.push(format!(
            "{object} was reported landed by {} successful runs: {runs:?}",
            runs.len()
        ));
    }
}

/// The landing objects a bronze run record says it landed (new, or finishing a batch).
fn landed_by(record: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    if record["job"] != "bronze" {
        return out;
    }
    let Some(details) = record["details"].as_object() else {
        return out;
    };
    let objects = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|o| o["object"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for source in details.values() {
        out.extend(objects(&source["objects"]));
        if let Some(finished) = source["batches_finished"].as_array() {
            for batch in finished {
                out.extend(objects(&batch["objects"]));
            }
        }
    }
    out
}

/// Why a run failed, in a few words: its error line, cut short.
fn why(done: &Ended) -> String {
    if done.code == 0 {
        return String::new();
    }
    let error = done
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("ERROR") || l.contains("aborting here"))
        .unwrap_or_default();
    let short: String = error.chars().skip_while(|c| *c != ' ').take(160).collect();
    format!(" ({})", short.trim())
}

/// What a run that panicked said: the panic with what it logged just before, then how its log
/// ended.
fn panicked(done: &Ended) -> String {
    let lines: Vec<&str> = done.stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("panicked"))
        .unwrap_or(0);
    let message = lines[at.saturating_sub(12)..lines.len().min(at + 4)].join("\n");
    format!(
        "{} panicked:\n{message}\n...\n{}",
        done.label,
        tail(&done.stderr)
    )
}

/// The last lines of a run's log.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
