//! The instruction budgets: each job, run on a fixed small landing, executes no more
//! instructions than `tests/budgets.toml` allows. Instructions, counted by valgrind's callgrind,
//! repeat from run to run whatever else the machine does, where wall time on these shared
//! machines moves by 2× from one hour to the next: a change that makes a job dearer fails here
//! until its budget is raised on purpose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lake_tests::{TempDir, as_a_user, bin, lake_gen, unavailable};
use serde::Deserialize;

/// One job's entry in `tests/budgets.toml`.
#[derive(Debug, Deserialize)]
struct Budget {
    /// Millions of instructions the job may execute on the budget landing.
    budget: u64,
    /// Millions it executed when the budget was last set.
    measured: u64,
    /// Why the budget is what it is.
    reason: String,
}

const JOBS: [&str; 3] = ["bronze", "silver", "gold"];

/// A budget this far above what a job executes no longer catches much: the test says so.
const SLACK_WORTH_LOWERING: f64 = 1.25;

#[test]
fn each_job_executes_no_more_instructions_than_its_budget() {
    if !cfg!(debug_assertions) {
        eprintln!("SKIP: the budgets are counted on the debug build that `make test` builds");
        return;
    }
    if !has_valgrind() {
        unavailable::<()>(
            "valgrind is not installed (Debian package valgrind; `make test` installs it)",
        );
        return;
    }
    let budgets = budgets();
    let dir = TempDir::new("budgets");
    let landing = budget_landing(&dir);
    let profiles = profiles_dir();
    let mut over = Vec::new();
    for job in JOBS {
        let budget = &budgets[job];
        let profile = profiles.join(format!("{job}.callgrind"));
        let spent = instructions(job, &dir, &landing, &profile) / 1_000_000;
        let share = spent as f64 / budget.budget as f64;
        eprintln!(
            "{job}: {spent} M instructions, {:.0}% of its budget of {} M (set when it took {} M); profile: {}",
            share * 100.0,
            budget.budget,
            budget.measured,
            profile.display()
        );
        if spent > budget.budget {
            over.push(format!(
                "{job} executed {spent} M instructions, {:.1}% over its budget of {} M ({})",
                (share - 1.0) * 100.0,
                budget.budget,
                budget.reason
            ));
        } else if budget.budget as f64 > spent as f64 * SLACK_WORTH_LOWERING {
            eprintln!(
                "note: {job} now costs well under its budget: lower it in tests/budgets.toml \
                 (to about {} M) so that the guard keeps catching regressions",
                spent + spent / 10
            );
        }
    }
    assert!(
        over.is_empty(),
        "{}.\nSee where the instructions go with `callgrind_annotate --inclusive=yes {}/<job>.callgrind`. \
         If the cost is meant, raise the budget in tests/budgets.toml and say why.",
        over.join("; "),
        profiles.display()
    );
}

fn has_valgrind() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The budgets of `tests/budgets.toml`, one for each job.
fn budgets() -> BTreeMap<String, Budget> {
    let path = lake_tests::repo().join("tests/budgets.toml");
    let text = std::fs::read_to_string(&path).expect("tests/budgets.toml");
    let budgets: BTreeMap<String, Budget> =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for job in JOBS {
        assert!(
            budgets.contains_key(job),
            "tests/budgets.toml has no [{job}]"
        );
    }
    budgets
}

/// The budget landing: 5,000 Last.fm plays of 20 users over 6 months (with the generator's
/// copies and malformed lines) and two days of Deezer logs of 1,000 streams. Small, so that a
/// job runs in about a minute under callgrind; it exercises every step of both sources
/// (landing, typing, quarantine, de-duplication, monthly and daily partitions, sessions, top
/// songs, daily and weekly charts, the report).
fn budget_landing(dir: &TempDir) -> PathBuf {
    let landing = dir.join("landing");
    let lastfm = ["--rows", "5000", "--users", "20", "--months", "6"];
    lake_gen("lastfm", &landing.join("lastfm"), &lastfm);
    let deezer = [
        "--days",
        "2",
        "--streams",
        "1000",
        "--users",
        "200",
        "--songs",
        "300",
    ];
    lake_gen("deezer", &landing.join("deezer"), &deezer);
    landing
}

/// Where the profiles of the last check are kept, beside the job binaries, for
/// `callgrind_annotate`.
fn profiles_dir() -> PathBuf {
    let jobs = bin("bronze");
    let dir = jobs
        .parent()
        .expect("a binary lives in a folder")
        .join("budgets");
    std::fs::create_dir_all(&dir).expect("create the profiles folder");
    dir
}

/// Runs `job` over `landing` into the lake in `dir` under callgrind and returns the
/// instructions it executed, from the profile it writes to `profile`.
fn instructions(job: &str, dir: &TempDir, landing: &Path, profile: &Path) -> u64 {
    let lake = dir.join("lake");
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(bin(job))
        .args(["--lake", &lake.display().to_string()])
        .args(["--landing", &landing.display().to_string()]);
    as_a_user(&mut cmd, dir.path(), &[]);
    let out = cmd.output().expect("start valgrind");
    assert!(
        out.status.success(),
        "{job} under callgrind exited {:?}:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(profile).expect("the callgrind profile");
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{} has no totals line", profile.display()))
}
