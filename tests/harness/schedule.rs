//! What a seed draws: deliveries of the landing pool's objects, runs (plain, shards, parts,
//! backfills, full refreshes), some started together, each with a fault or none.

use std::fmt;

use lake_schema::{CATALOGUE, Layer};

/// SplitMix64: the same seed gives the same schedule on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Milliseconds in [from, to).
    pub fn millis(&mut self, from: u64, to: u64) -> u64 {
        from + self.below(to - from)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Bronze,
    Silver,
    Gold,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Bronze => "bronze",
            Job::Silver => "silver",
            Job::Gold => "gold",
        }
    }
}

/// Which run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// `bronze --shard i/n`, `silver --part i/n`.
    Part(u32, u32),
    /// `--from … --to …` (months).
    Backfill(&'static str, &'static str),
    FullRefresh,
}

/// What goes wrong with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Aborts at a named point (`LAKE_TEST_FAULT`), as SIGKILL there would.
    Crash(String),
    /// SIGKILL this long after the start, if it still runs.
    Kill {
        after_ms: u64,
    },
    /// Stops at a named point with SIGSTOP (or this long after the start) and stays stopped
    /// past its lease's TTL while the schedule goes on; resumed later.
    Stall {
        at: Option<String>,
        after_ms: u64,
    },
    /// Its store fails (S3 only, through the fault proxy) from this long after the start, for
    /// a while: down, answering 503, hanging, or losing answers.
    Store {
        mode: StoreFault,
        after_ms: u64,
        for_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    Down,
    Unavailable,
    Hang,
    LoseAnswers,
}

/// One run to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub job: Job,
    pub variant: Variant,
    pub fault: Fault,
}

/// A step of a schedule.
#[derive(Debug, Clone)]
pub enum Step {
    /// The pool's objects of these indices arrive in the landing zone.
    Deliver(Vec<usize>),
    /// These runs start together; the step ends when all have ended (or stalled).
    Run(Vec<Launch>),
}

/// Month ranges a backfill may take (the generated data's years).
const BACKFILLS: &[(&str, &str)] = &[
    ("2005-01", "2006-06"),
    ("2006-01", "2008-12"),
    ("2018-11", "2018-11"),
    ("2021-01", "2022-12"),
    ("2007-07", "2030-12"),
];

/// What may be drawn besides runs and deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Runs stalled past their lease.
    pub stalls: bool,
    /// The store failing (S3 only).
    pub store: bool,
    /// Only what earlier versions of the jobs had: no `committing:` or `pause:` points.
    pub compat: bool,
}

/// Draws a schedule over a pool of objects (paths below the pool, `lastfm/plays-0.tsv`).
pub fn draw(seed: u64, objects: &[String], faults: Faults) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..objects.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let deliveries = 1 + rng.below(3) as usize;
    let steps = 5 + rng.below(7) as usize;
    let mut plan = Vec::new();
    let mut delivered = 0;
    let mut stalled = 0;
    // a consumer often runs right after its producer failed: where batches are half done
    let mut next: Option<Job> = None;
    // the sources of the last delivery: bronze has something to land for them
    let mut fresh: Vec<String> = Vec::new();
    for n in 0..steps {
        // the first step delivers; later deliveries land between runs
        let deliver = n == 0 || (delivered < deliveries && rng.chance(0.3));
        if deliver && delivered < order.len() {
            let share = if n == 0 {
                order.len() / 2 + 1
            } else {
                1 + rng.below(order.len() as u64 / 3 + 1) as usize
            };
            let taken: Vec<usize> = order.drain(..share.min(order.len())).collect();
            fresh = taken
                .iter()
                .filter_map(|&i| objects[i].split('/').next().map(String::from))
                .collect();
            fresh.sort();
            fresh.dedup();
            delivered += 1;
            plan.push(Step::Deliver(taken));
        }
        // the first runs land something: a schedule with nothing in bronze tests little
        let mut group = runs(&mut rng, next.take());
        if n == 0 {
            for launch in &mut group {
                launch.job = Job::Bronze;
                if !matches!(launch.variant, Variant::Plain | Variant::Part(..)) {
                    launch.variant = Variant::Plain;
                }
            }
        }
        for launch in &mut group {
            let may = Faults {
                stalls: faults.stalls && stalled < 1,
                ..faults
            };
            launch.fault = fault(&mut rng, launch.job, may, &fresh);
            if matches!(launch.fault, Fault::Stall { .. }) {
                stalled += 1;
            }
        }
        let failed = group.iter().find(|l| l.fault != Fault::None).map(|l| l.job);
        next = match failed {
            Some(Job::Bronze) if rng.chance(0.85) => Some(Job::Silver),
            Some(Job::Silver) if rng.chance(0.4) => Some(Job::Gold),
            _ => None,
        };
        plan.push(Step::Run(group));
    }
    if !order.is_empty() {
        plan.push(Step::Deliver(order));
    }
    plan
}

/// The runs of one step: one run, the parts of a split started together, or two runs of
/// overlapping or disjoint holds started together.
fn runs(rng: &mut Rng, job: Option<Job>) -> Vec<Launch> {
    let job = job.unwrap_or(*rng.pick(&[
        Job::Bronze,
        Job::Bronze,
        Job::Silver,
        Job::Silver,
        Job::Gold,
    ]));
    let launch = |job, variant| Launch {
        job,
        variant,
        fault: Fault::None,
    };
    let together = rng.below(10);
    match (job, together) {
        (Job::Bronze | Job::Silver, 0..=2) => {
            let n = 2 + rng.below(2) as u32;
            (0..n).map(|i| launch(job, Variant::Part(i, n))).collect()
        }
        (_, 3) => {
            let other = variant(rng, job);
            vec![launch(job, Variant::Plain), launch(job, other)]
        }
        _ => vec![launch(job, variant(rng, job))],
    }
}

fn variant(rng: &mut Rng, job: Job) -> Variant {
    match (job, rng.below(10)) {
        (Job::Bronze, 0..=1) => Variant::Part(rng.below(2) as u32, 2),
        (Job::Silver, 0) => Variant::Part(rng.below(2) as u32, 2),
        (Job::Silver | Job::Gold, 1..=2) => {
            let (from, to) = *rng.pick(BACKFILLS);
            Variant::Backfill(from, to)
        }
        (Job::Silver | Job::Gold, 3) => Variant::FullRefresh,
        _ => Variant::Plain,
    }
}

/// A fault for a run of `job`; `fresh` are the sources bronze has something new of.
fn fault(rng: &mut Rng, job: Job, faults: Faults, fresh: &[String]) -> Fault {
    let Faults {
        stalls,
        store,
        compat,
    } = faults;
    let roll = rng.below(100);
    match roll {
        0..=44 => Fault::None,
        45..=69 => Fault::Crash(point(rng, job, compat, fresh)),
        70..=79 => Fault::Kill {
            after_ms: rng.millis(100, 4000),
        },
        80..=89 if stalls => Fault::Stall {
            at: (!compat && rng.chance(0.6)).then(|| point(rng, job, compat, fresh)),
            after_ms: rng.millis(100, 3000),
        },
        90..=99 if store => Fault::Store {
            mode: *rng.pick(&[
                StoreFault::Down,
                StoreFault::Unavailable,
                StoreFault::Hang,
                StoreFault::LoseAnswers,
            ]),
            after_ms: rng.millis(100, 3000),
            for_ms: rng.millis(200, 2500),
        },
        _ => Fault::Kill {
            after_ms: rng.millis(100, 4000),
        },
    }
}

/// A named fault point of `job`: around its claims and commits; for bronze, mostly around the
/// tables of the sources it has something new of (where a crash leaves a batch half done).
fn point(rng: &mut Rng, job: Job, compat: bool, fresh: &[String]) -> String {
    let layer = match job {
        Job::Bronze => Layer::Bronze,
        Job::Silver => Layer::Silver,
        Job::Gold => Layer::Gold,
    };
    let mut points: Vec<String> = Vec::new();
    if job == Job::Bronze {
        points.push("committed:meta.landed_objects".into());
        points.push("bronze.reading".into());
        if !compat {
            points.push("bronze.batch_taken".into());
        }
    }
    let focus = job == Job::Bronze && !fresh.is_empty() && rng.chance(0.7);
    let of_fresh = |name: &str| {
        fresh
            .iter()
            .any(|f| name.starts_with(&format!("bronze.{f}_")))
    };
    if focus {
        points.clear();
    }
    for def in CATALOGUE.iter().filter(|d| d.layer == layer) {
        if focus && !of_fresh(&def.qualified_name()) {
            continue;
        }
        points.push(format!("committed:{}", def.qualified_name()));
        if !compat {
            points.push(format!("committing:{}", def.qualified_name()));
        }
    }
    rng.pick(&points).clone()
}

impl fmt::Display for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.job.name())?;
        for arg in self.args() {
            write!(f, " {arg}")?;
        }
        match &self.fault {
            Fault::None => Ok(()),
            Fault::Crash(p) => write!(f, " [crash at {p}]"),
            Fault::Kill { after_ms } => write!(f, " [SIGKILL after {after_ms} ms]"),
            Fault::Stall { at: Some(p), .. } => write!(f, " [stalled at {p}]"),
            Fault::Stall { after_ms, .. } => write!(f, " [stalled after {after_ms} ms]"),
            Fault::Store {
                mode,
                after_ms,
                for_ms,
            } => write!(f, " [store {mode:?} from {after_ms} ms for {for_ms} ms]"),
        }
    }
}

impl Launch {
    /// The run's own arguments (besides the lake and landing).
    pub fn args(&self) -> Vec<String> {
        match (&self.variant, self.job) {
            (Variant::Plain, _) => vec![],
            (Variant::Part(i, n), Job::Bronze) => vec!["--shard".into(), format!("{i}/{n}")],
            (Variant::Part(i, n), _) => vec!["--part".into(), format!("{i}/{n}")],
            (Variant::Backfill(from, to), _) => {
                vec![
                    "--from".into(),
                    from.to_string(),
                    "--to".into(),
                    to.to_string(),
                ]
            }
            (Variant::FullRefresh, _) => vec!["--full-refresh".into()],
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Deliver(objects) => write!(f, "deliver {} objects", objects.len()),
            Step::Run(runs) => {
                let runs: Vec<String> = runs.iter().map(ToString::to_string).collect();
                write!(f, "{}", runs.join("  &  "))
            }
        }
    }
}
