//! `lake-chaos`: the randomized fault harness over many seeds (`make chaos SEEDS=N`), or one
//! seed replayed (`make chaos SEED=17 STORE=local`). See `lake_tests::harness`.

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use lake_tests::harness::world::{Pool, Store};
use lake_tests::harness::{Clean, Mode, Outcome, run_seed};
use lake_tests::{S3, TempDir};

struct Args {
    seeds: Vec<u64>,
    store: String,
    jobs: usize,
    mode: Mode,
    verbose: bool,
    /// Print each seed's schedule, run nothing.
    plan: bool,
}

const USAGE: &str = "usage: lake-chaos [--seed N | --seeds N | --seeds FROM..TO] \
[--store local|s3|mixed] [--jobs N] [--compat] [--verbose] [--plan]

  --seeds N      seeds 1 to N (default 20); FROM..TO: those seeds
  --seed N       one seed, to replay it
  --store        where the lake is: local, s3 (LocalStack), or mixed (default: every third
                 seed on LocalStack)
  --jobs N       seeds run at the same time (default 1)
  --compat       only what earlier versions of the jobs had (no stalls, no new fault points):
                 to run the harness on their binaries (LAKE_TEST_BIN_DIR)
  --verbose      print every seed's schedule, not only the failing ones
  --plan         print each seed's schedule and run nothing";

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: (1..=20).collect(),
        store: "mixed".into(),
        jobs: 1,
        mode: Mode::default(),
        verbose: false,
        plan: false,
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>| -> Result<u64, String> {
        v.as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| USAGE.to_string())
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" => args.seeds = vec![number(it.next())?],
            "--seeds" => {
                let v = it.next().unwrap_or_default();
                args.seeds = match v.split_once("..") {
                    Some((a, b)) => (number(Some(a.into()))?..=number(Some(b.into()))?).collect(),
                    None => (1..=number(Some(v))?).collect(),
                };
            }
            "--store" => args.store = it.next().unwrap_or_default(),
            "--jobs" => args.jobs = number(it.next())?.max(1) as usize,
            "--compat" => args.mode.compat = true,
            "--verbose" => args.verbose = true,
            "--plan" => args.plan = true,
            _ => return Err(USAGE.to_string()),
        }
    }
    if !["local", "s3", "mixed"].contains(&args.store.as_str()) {
        return Err(USAGE.to_string());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let work = TempDir::new("chaos");
    let pool = Pool::generate(&work.join("pool"));
    if args.plan {
        for &seed in &args.seeds {
            println!("seed {seed}:");
            for step in lake_tests::harness::plan(seed, &pool, true, args.mode) {
                println!("  {step}");
            }
        }
        return ExitCode::SUCCESS;
    }
    let s3 = match args.store.as_str() {
        "local" => None,
        _ => match S3::get() {
            Some(s3) => Some(s3),
            None => {
                eprintln!("LocalStack is not running (make localstack-up)");
                return ExitCode::from(2);
            }
        },
    };
    let local = Store::Local;
    let remote = s3.map(Store::S3);
    let store_of = |seed: u64| match (args.store.as_str(), &remote) {
        ("s3", Some(s3)) => s3,
        ("mixed", Some(s3)) if seed.is_multiple_of(3) => s3,
        _ => &local,
    };
    let cleans: Vec<(&'static str, Clean)> = [Some(&local), remote.as_ref()]
        .into_iter()
        .flatten()
        .filter(|s| {
            args.seeds
                .iter()
                .any(|seed| store_of(*seed).name() == s.name())
        })
        .map(|s| {
            (
                s.name(),
                Clean::make(
                    s,
                    &pool,
                    work.join(&format!("clean-{}", s.name())),
                    args.mode,
                ),
            )
        })
        .collect();
    let clean_of = |store: &Store| {
        cleans
            .iter()
            .find(|(n, _)| *n == store.name())
            .map(|(_, c)| c)
    };
    let queue = Mutex::new(args.seeds.clone().into_iter());
    let failed: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(seed) = next else { break };
                    let store = store_of(seed);
                    let Some(clean) = clean_of(store) else { break };
                    let at = Instant::now();
                    let dir =
                        std::env::temp_dir().join(format!("lake-chaos-{}-{seed}", store.name()));
                    let outcome = run_seed(seed, store, &pool, clean, dir, args.mode);
                    if args.verbose || !outcome.passed() {
                        println!("{}", outcome.report());
                    }
                    if outcome.passed() {
                        println!(
                            "seed {seed} on {}: ok ({} steps, {:.0} s)",
                            store.name(),
                            outcome.log.len(),
                            at.elapsed().as_secs_f64()
                        );
                    } else if let Ok(mut f) = failed.lock() {
                        f.push(outcome);
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_default();
    println!(
        "{} seeds in {:.0} s: {} failed{}",
        args.seeds.len(),
        started.elapsed().as_secs_f64(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            let replays: Vec<String> = failed.iter().map(Outcome::replay).collect();
            format!("; replay with:\n  {}", replays.join("\n  "))
        }
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
