//! What an orchestrator relies on: a job crashed at any point and run again, an incremental
//! run, a backfill and a full refresh all leave the lake as one clean run over the same landing
//! data would.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use lake_tests::*;

/// What a second delivery brings: two plays in a new month (2009-03), a copy of a play landed
/// in the first (2008-07), a play silver rejects and a line bronze rejects.
const MORE_PLAYS: &str = "user_000001\t2009-03-01T10:00:00Z\t\tNew Artist\t\tNew Song\n\
user_000001\t2009-03-01T10:05:00Z\t\tNew Artist\t\tNew Song 2\n\
user_000010\t2008-07-01T12:00:00Z\t\tFiller Artist\t\tFiller 1\n\
user_000001\tnot-a-time\t\tX\t\tY\n\
user_000001\tbroken\n";

type Lake = BTreeMap<String, Vec<String>>;

/// Columns that differ between two lakes built from two copies of the same landing files.
const DIFFERS: &[&str] = &[
    "run_id",
    "ingested_at",
    "quarantined_at",
    "landed_at",
    "e_tag",
];

fn deliver_more(landing: &Path) {
    std::fs::write(landing.join("lastfm/more-plays.tsv"), MORE_PLAYS).expect("write");
}

/// Runs bronze, silver and gold; when `fault` names one of them, that job first crashes at
/// the named point, and is then run again.
fn run_all(dir: &TempDir, args: &[&str], fault: Option<(&str, &str)>) -> Vec<Ran> {
    let mut ran = Vec::new();
    for job in ["bronze", "silver", "gold"] {
        if let Some((_, point)) = fault.filter(|(j, _)| *j == job) {
            let crashed = run(job, dir.path(), args, &[("LAKE_TEST_FAULT", point)]);
            assert_ne!(crashed.code, 0, "{job} should have crashed at {point}");
            assert!(
                crashed.stderr.contains("aborting here"),
                "{job} did not reach {point}:\n{}",
                crashed.stderr
            );
        }
        ran.push(run(job, dir.path(), args, &[]).ok());
    }
    ran
}

/// Two deliveries, each followed by the three jobs; a crash in `round` (1 or 2) if asked.
fn two_rounds(dir: &TempDir, fault: Option<(u8, &str, &str)>) -> (Lake, String, Vec<Ran>) {
    let landing = hand_landing_copy(dir);
    let args = local_args(dir, &landing);
    let args = strs(&args);
    let crash = |round: u8| {
        fault
            .filter(|(r, _, _)| *r == round)
            .map(|(_, job, point)| (job, point))
    };
    run_all(dir, &args, crash(1));
    deliver_more(&landing);
    let second = run_all(dir, &args, crash(2));
    let lake = dir.join("lake").display().to_string();
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    (in_dir(snapshot(&lake, &[], DIFFERS), dir), answer, second)
}

/// The snapshot with the test's own directory written as `<dir>` (landing objects are named by
/// their full path).
fn in_dir(lake: Lake, dir: &TempDir) -> Lake {
    let path = dir.path().display().to_string();
    lake.into_iter()
        .map(|(t, rows)| {
            let mut rows: Vec<String> = rows.iter().map(|r| r.replace(&path, "<dir>")).collect();
            rows.sort();
            (t, rows)
        })
        .collect()
}

/// The lake after two clean rounds, computed once for all tests.
fn clean() -> &'static (Lake, String, Vec<Ran>) {
    static CLEAN: OnceLock<(Lake, String, Vec<Ran>)> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let dir = TempDir::new("clean");
        two_rounds(&dir, None)
    })
}

fn crash_and_rerun(points: &[(u8, &str, &str)]) {
    let (want, answer, _) = clean();
    for &(round, job, point) in points {
        let dir = TempDir::new("crash");
        let (got, got_answer, _) = two_rounds(&dir, Some((round, job, point)));
        let what = format!("{job} crashed at {point} in round {round}, then run again");
        assert_same_lake(&got, want, &what);
        assert_eq!(&got_answer, answer, "{what}: the answer");
    }
}

#[test]
fn bronze_crashed_at_any_point_then_rerun_lands_every_line_once() {
    crash_and_rerun(&[
        // the batch is claimed, no row written
        (1, "bronze", "committed:meta.landed_objects"),
        // writers open, objects being read
        (1, "bronze", "bronze.reading"),
        // some tables of the batch committed, others not
        (1, "bronze", "committed:bronze.lastfm_plays"),
        (2, "bronze", "committed:bronze.lastfm_quarantine"),
    ]);
}

#[test]
fn silver_crashed_between_its_tables_then_rerun_finishes_exactly_the_rest() {
    crash_and_rerun(&[
        (1, "silver", "committed:silver.lastfm_listens"),
        (2, "silver", "committed:silver.lastfm_listens"),
        (2, "silver", "committed:silver.lastfm_users"),
    ]);
}

#[test]
fn gold_crashed_between_its_tables_then_rerun_gives_the_same_answer() {
    crash_and_rerun(&[
        (1, "gold", "committed:gold.lastfm_sessions"),
        (2, "gold", "committed:gold.lastfm_top_songs"),
    ]);
}

#[test]
fn an_incremental_run_equals_one_run_over_all_the_data_and_rebuilds_only_the_touched_months() {
    let (incremental, answer, second) = clean();
    let [bronze, silver, gold] = [&second[0], &second[1], &second[2]];
    assert_eq!(bronze.source_detail("lastfm", "batch"), 2);
    assert_eq!(bronze.num("rows_in"), 5, "only the new object is read");
    assert_eq!(
        silver.detail("lastfm")["bronze_batches"],
        serde_json::json!({"after": 1, "through": 2}),
        "the run record names the batches consumed"
    );
    // the new plays touch 2008-07 (a copy of a landed play) and 2009-03
    assert_eq!(
        silver.detail("silver.lastfm_listens refresh"),
        "months replaced: 2008-07, 2009-03"
    );
    let in_touched_months = incremental["silver.lastfm_listens"]
        .iter()
        .filter(|r| {
            r.contains(r#""month":7,"#) && r.contains(r#""year":2008"#)
                || r.contains(r#""year":2009"#) && r.contains(r#""month":3,"#)
        })
        .count() as u64;
    assert_eq!(
        silver.rows_written("silver.lastfm_listens"),
        in_touched_months
    );
    let listens = silver.reconciled("lastfm", "silver.lastfm_listens");
    assert_eq!(listens["duplicates"], 1, "the copy of a landed play");
    let n = |k: &str| listens[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(n("rows_out"), in_touched_months, "{listens}");
    assert_eq!(
        n("rows_in"),
        n("rows_out") + n("rejected") + n("duplicates"),
        "the plays of the touched months add up: {listens}"
    );
    assert_eq!(
        silver.detail("silver.lastfm_quarantine refresh"),
        "appended the rows of bronze batches after 1"
    );
    assert_eq!(silver.rows_written("silver.lastfm_quarantine"), 1);
    assert_eq!(
        gold.detail("gold.lastfm_sessions refresh"),
        "months replaced: 2008-07 onwards",
        "the sessions from the first month the delivery changed: {}",
        gold.stdout
    );

    // a delivery whose only play is rejected is consumed once, then silver is up to date
    let dir = TempDir::new("rejects-only");
    let landing_dir = hand_landing_copy(&dir);
    let args = local_args(&dir, &landing_dir);
    let args = strs(&args);
    run_all(&dir, &args, None);
    std::fs::write(
        landing_dir.join("lastfm/bad.tsv"),
        "user_000001\tnot-a-time\t\tX\t\tY\n",
    )
    .expect("write");
    run("bronze", dir.path(), &args, &[]).ok();
    let consumed = run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(
        consumed.detail("silver.lastfm_listens refresh"),
        "no month to replace: the new bronze batches hold no accepted row"
    );
    assert_eq!(consumed.rows_written("silver.lastfm_listens"), 0);
    assert_eq!(consumed.rows_written("silver.lastfm_quarantine"), 1);
    let again = run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(
        again.detail("silver.lastfm_listens refresh"),
        "up to date: nothing new below it since it was built"
    );

    // the same landing data in one delivery
    let dir = TempDir::new("one-shot");
    let landing = hand_landing_copy(&dir);
    deliver_more(&landing);
    let args = local_args(&dir, &landing);
    run_all(&dir, &strs(&args), None);
    let lake = dir.join("lake").display().to_string();
    let batch_free = [DIFFERS, &["batch"]].concat();
    let strip = |lake: &Lake| -> Lake {
        lake.iter()
            .map(|(t, rows)| {
                let mut rows: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        let mut v: serde_json::Value = serde_json::from_str(r).expect("row");
                        if let Some(o) = v.as_object_mut() {
                            o.remove("batch");
                        }
                        v.to_string()
                    })
                    .collect();
                rows.sort();
                (t.clone(), rows)
            })
            .collect()
    };
    assert_same_lake(
        &strip(incremental),
        &in_dir(snapshot(&lake, &[], &batch_free), &dir),
        "two deliveries against one",
    );
    let one_shot =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    assert_eq!(&one_shot, answer);
}

#[test]
fn a_backfill_replaces_only_its_months_and_a_full_refresh_rebuilds_every_table() {
    let dir = TempDir::new("backfill");
    let landing = hand_landing_copy(&dir);
    let args = local_args(&dir, &landing);
    let args = strs(&args);
    run_all(&dir, &args, None);
    let lake = dir.join("lake").display().to_string();
    let before = in_dir(snapshot(&lake, &[], DIFFERS), &dir);
    let july = before["silver.lastfm_listens"]
        .iter()
        .filter(|r| r.contains(r#""month":7,"#))
        .count() as u64;

    let backfill = run(
        "silver",
        dir.path(),
        &[&args[..], &["--from", "2008-07", "--to", "2008-07-31"]].concat(),
        &[],
    )
    .ok();
    assert_eq!(backfill.rows_written("silver.lastfm_listens"), july);
    assert_eq!(
        backfill.detail("silver.lastfm_users refresh"),
        "not in the backfill: not partitioned by date"
    );
    let gold = run(
        "gold",
        dir.path(),
        &[&args[..], &["--from", "2008-07"]].concat(),
        &[],
    )
    .ok();
    assert_eq!(
        gold.detail("gold.lastfm_top_songs refresh"),
        "not in the backfill: not partitioned by date"
    );
    let full = run(
        "silver",
        dir.path(),
        &[&args[..], &["--full-refresh"]].concat(),
        &[],
    )
    .ok();
    for table in [
        "silver.lastfm_listens",
        "silver.lastfm_users",
        "silver.lastfm_quarantine",
    ] {
        assert_eq!(full.detail(&format!("{table} refresh")), "rebuilt in full");
    }
    assert_same_lake(
        &in_dir(snapshot(&lake, &[], DIFFERS), &dir),
        &before,
        "after a backfill and a full refresh",
    );

    let backwards = run(
        "silver",
        dir.path(),
        &[&args[..], &["--from", "2009-03", "--to", "2009-02"]].concat(),
        &[],
    );
    assert_eq!(backwards.code, 2, "{}", backwards.stderr);
    assert!(
        backwards.stderr.contains("is after --to"),
        "{}",
        backwards.stderr
    );
}

/// Starts `job`, waits for a stderr line containing `after`, then kills it with SIGKILL.
fn kill_when(job: &str, dir: &Path, args: &[&str], env: &[(&str, &str)], after: &str) {
    use std::io::BufRead;
    let mut child = spawn(job, dir, args, env);
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(after) {
            break;
        }
    }
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    let status = child.wait().expect("wait");
    assert!(
        killed && status.code().is_none(),
        "{job} was to be killed after '{after}' but ended first ({status}):\n{seen}"
    );
}

#[test]
fn jobs_killed_mid_write_on_s3_then_rerun_leave_the_lake_of_a_clean_run() {
    let Some(s3) = S3::get() else { return };
    let dir = TempDir::new("sigkill");
    lake_gen(
        "lastfm",
        &dir.join("gen"),
        &[
            "--rows",
            "40000",
            "--users",
            "20",
            "--seed",
            "5",
            "--bad-rate",
            "0.01",
            "--dup-rate",
            "0.01",
        ],
    );
    let env = s3.env();
    let env = pairs(&env);
    let mut lakes = Vec::new();
    for killed in [false, true] {
        let bucket = s3.bucket(if killed { "killed" } else { "clean" });
        for f in [PLAYS, PROFILES] {
            let bytes = std::fs::read(dir.join("gen").join(f)).expect("generated file");
            bucket.put(&format!("landing/lastfm/{f}"), bytes);
        }
        let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
        let args = ["--lake", lake.as_str(), "--landing", landing.as_str()];
        if killed {
            // bronze while it streams the plays into its writers, silver after its first commit
            kill_when("bronze", dir.path(), &args, &env, "landing");
            run("bronze", dir.path(), &args, &env).ok();
            kill_when("silver", dir.path(), &args, &env, "committed");
            run("silver", dir.path(), &args, &env).ok();
            kill_when("gold", dir.path(), &args, &env, "committed");
        } else {
            run("bronze", dir.path(), &args, &env).ok();
            run("silver", dir.path(), &args, &env).ok();
        }
        run("gold", dir.path(), &args, &env).ok();
        let lake: Lake = snapshot(&lake, &env, DIFFERS)
            .into_iter()
            .map(|(t, rows)| {
                let rows = rows.iter().map(|r| r.replace(&bucket.name, "<bucket>"));
                let mut rows: Vec<String> = rows.collect();
                rows.sort();
                (t, rows)
            })
            .collect();
        lakes.push(lake);
    }
    assert_same_lake(&lakes[1], &lakes[0], "killed with SIGKILL, then run again");
}

#[test]
fn a_failing_store_fails_the_run_after_bounded_retries_and_a_rerun_completes() {
    let Some(s3) = S3::get() else { return };
    let proxy = FaultProxy::start(&s3.endpoint);
    let dir = TempDir::new("flaky");
    lake_gen(
        "lastfm",
        &dir.join("gen"),
        &["--rows", "40000", "--users", "20", "--seed", "9"],
    );
    let bucket = s3.bucket("flaky");
    for f in [PLAYS, PROFILES] {
        let bytes = std::fs::read(dir.join("gen").join(f)).expect("generated file");
        bucket.put(&format!("landing/lastfm/{f}"), bytes);
    }
    std::fs::write(
        dir.join("lake.toml"),
        "s3_max_retries = 2\ns3_retry_timeout_secs = 4\ns3_request_timeout_secs = 2\n",
    )
    .expect("lake.toml");
    let mut env = s3.env();
    for (k, v) in &mut env {
        if *k == "AWS_ENDPOINT_URL" {
            *v = proxy.endpoint.clone();
        }
    }
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let args = ["--lake", lake.as_str(), "--landing", landing.as_str()];

    for fault in [Fault::Down, Fault::Unavailable, Fault::Hang] {
        proxy.set(fault);
        let started = std::time::Instant::now();
        let failed = run("bronze", dir.path(), &args, &env);
        let what = format!("store {fault:?}");
        assert_eq!(failed.code, 1, "{what}: {}", failed.stderr);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{what}: retries are bounded"
        );
        assert!(
            failed.stderr.contains("object store error at s3://"),
            "{what}: the error names the object: {}",
            failed.stderr
        );
        assert!(!failed.stderr.contains("panicked"), "{what}");
    }

    // the store goes away while bronze lands, and comes back
    proxy.set(Fault::None);
    let mut child = spawn("bronze", dir.path(), &args, &env);
    let stderr = child.stderr.take().expect("stderr");
    let mut log = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap_or_default();
        log.push_str(&line);
        log.push('\n');
        if line.contains("landing") {
            proxy.set(Fault::Down);
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(1),
        "bronze with the store gone mid-run:\n{log}"
    );
    proxy.set(Fault::None);
    let [bronze, silver, _] = pipeline(dir.path(), &args, &env);
    let lines = |f: &str| {
        let text = std::fs::read_to_string(dir.join("gen").join(f)).expect("generated file");
        text.lines().count() as u64
    };
    // every line read once (the profile file's header is not a record), and landed once
    assert_eq!(bronze.num("rows_in"), lines(PLAYS) + lines(PROFILES) - 1);
    assert_eq!(silver.num("rows_in"), bronze.num("rows_out"));
    let answer = String::from_utf8(bucket.get("lake/gold/lastfm/top_songs.tsv")).expect("utf-8");
    assert_eq!(answer.lines().count(), 11, "{answer}");
}

/// Parquet files under `dir`, recursively (a table's data files, live or not).
fn parquet_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() && !path.ends_with("_delta_log") {
                parquet_files(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

#[test]
fn maintenance_compacts_checkpoints_and_vacuums_without_changing_a_row() {
    let dir = TempDir::new("maintain");
    let landing = hand_landing_copy(&dir);
    let args = local_args(&dir, &landing);
    let args = strs(&args);
    run_all(&dir, &args, None);
    deliver_more(&landing);
    run_all(&dir, &args, None);
    let lake = dir.join("lake").display().to_string();
    let before = snapshot(&lake, &[], &[]);
    let plays = dir.join("lake/bronze/lastfm/plays");
    assert_eq!(parquet_files(&plays), 2, "one file per bronze batch");
    let tool = |extra: &[&str]| {
        run(
            "lake",
            dir.path(),
            &[&["--lake", &lake][..], extra].concat(),
            &[],
        )
    };

    let optimized = tool(&["optimize", "bronze", "silver.lastfm_listens"]).ok();
    let line = optimized
        .stdout
        .lines()
        .find(|l| l.contains("\"bronze.lastfm_plays\""))
        .unwrap_or_default();
    assert!(
        line.contains(r#""files_compacted":2"#) && line.contains(r#""files_written":1"#),
        "{}",
        optimized.stdout
    );
    tool(&["checkpoint", "silver"]).ok();
    let log = std::fs::read_dir(dir.join("lake/silver/lastfm/listens/_delta_log")).expect("log");
    assert!(
        log.flatten().any(|e| e
            .file_name()
            .to_string_lossy()
            .ends_with(".checkpoint.parquet")),
        "a checkpoint was written"
    );
    tool(&["vacuum", "--retain-hours", "0"]).ok();
    assert_eq!(parquet_files(&plays), 1, "the compacted files are gone");
    assert_same_lake(&snapshot(&lake, &[], &[]), &before, "after maintenance");

    // maintenance waits its turn: a running silver job holds the layer
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = std::env::var("HOSTNAME").unwrap_or(host);
    std::fs::create_dir_all(dir.join("lake/_leases/silver")).expect("mkdir");
    std::fs::write(
        dir.join("lake/_leases/silver/a-silver-run.json"),
        format!(
            r#"{{"run_id":"a-silver-run","pid":{},"host":"{}","expires_at":"2999-01-01T00:00:00Z"}}"#,
            std::process::id(),
            host.trim()
        ),
    )
    .expect("lease");
    let busy = tool(&["optimize", "silver"]);
    assert_eq!(busy.code, 4, "{}", busy.stderr);
    assert!(busy.stderr.contains("a-silver-run"), "{}", busy.stderr);
}

#[test]
fn a_progress_line_is_drawn_on_a_terminal_and_nothing_when_stderr_is_piped() {
    if !has_script() {
        return;
    }
    let dir = TempDir::new("progress");
    let landing = hand_landing_copy(&dir);
    let lake = dir.join("lake");
    let on_terminal = |job: &str| {
        let cmd = format!(
            "{} --lake {} --landing {}",
            bin(job).display(),
            lake.display(),
            landing.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(dir.path())
            .env_remove("LAKE_LOG_FORMAT")
            .output()
            .expect("script");
        assert!(out.status.success(), "{job} on a terminal");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bronze = on_terminal("bronze");
    assert!(bronze.contains("bronze lastfm ["), "{bronze}");
    let silver = on_terminal("silver");
    assert!(
        silver.contains("silver lastfm [") && silver.contains("3 / 3"),
        "{silver}"
    );
    let args = local_args(&dir, &landing);
    let piped = run("gold", dir.path(), &strs(&args), &[]).ok();
    assert!(
        !piped.stderr.contains('\r') && !piped.stderr.contains("gold lastfm ["),
        "{}",
        piped.stderr
    );
}

#[test]
fn a_gold_backfill_replaces_the_days_of_the_daily_tables_only() {
    let dir = TempDir::new("gold-days");
    let landing = dir.join("landing");
    lake_gen(
        "sparkify",
        &landing.join("sparkify"),
        &[
            "--songs", "40", "--events", "2000", "--users", "15", "--days", "4",
        ],
    );
    let args = local_args(&dir, &landing);
    let args = strs(&args);
    run_all(&dir, &args, None);
    let lake = dir.join("lake").display().to_string();
    let before = snapshot(&lake, &[], DIFFERS);
    let daily = &before["gold.sparkify_daily_active_users"];
    assert!(daily.len() >= 3, "{daily:?}");
    let second_day = {
        let mut days: Vec<String> = daily
            .iter()
            .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .filter_map(|v| v["day"].as_str().map(String::from))
            .collect();
        days.sort();
        days[1].clone()
    };
    let on_day = |table: &str| {
        before[table]
            .iter()
            .filter(|r| r.contains(&format!(r#""day":"{second_day}""#)))
            .count() as u64
    };
    let gold = run(
        "gold",
        dir.path(),
        &[&args[..], &["--from", &second_day, "--to", &second_day]].concat(),
        &[],
    )
    .ok();
    for table in [
        "gold.sparkify_daily_active_users",
        "gold.sparkify_top_songs_daily",
        "gold.sparkify_top_artists_daily",
    ] {
        assert_eq!(gold.rows_written(table), on_day(table), "{table}");
    }
    assert_eq!(
        gold.detail("gold.sparkify_sessions refresh"),
        "not in the backfill: not partitioned by date"
    );
    assert_same_lake(
        &snapshot(&lake, &[], DIFFERS),
        &before,
        "after a one-day backfill",
    );
}
