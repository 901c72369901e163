//! Nothing lost, nothing twice: batches that become complete out of number order all reach
//! silver; a run that lost its lease cannot commit; leases are judged by the store's clock and
//! fail closed. Each test is a scenario that lost or doubled data before it was fixed.

use lake_tests::*;

/// The rows of a table, counted with `lake sql`.
fn count(lake: &str, table: &str) -> u64 {
    let rows = lake_sql(lake, &format!("SELECT count(*) AS n FROM {table}"), &[]);
    rows[0]["n"].as_u64().unwrap_or(u64::MAX)
}

/// A lake's path and the job arguments over `landing`.
fn lake_of(dir: &TempDir, landing: &std::path::Path) -> (String, Vec<String>) {
    let lake = dir.join("lake").display().to_string();
    (lake, local_args(dir, landing))
}

/// Runs `job`, which must crash at the fault point `point`.
fn crash(job: &str, dir: &TempDir, args: &[&str], point: &str) {
    let crashed = run(job, dir.path(), args, &[("LAKE_TEST_FAULT", point)]);
    assert!(
        crashed.code != 0 && crashed.stderr.contains("aborting here"),
        "{job} did not crash at {point} (exit {}):\n{}",
        crashed.code,
        crashed.stderr
    );
}

/// Last.fm plays in `files` files (generated with other seeds) and one profiles file.
fn lastfm_landing(dir: &TempDir, files: u32, rows: u32) -> std::path::PathBuf {
    let landing = dir.join("landing");
    let out = landing.join("lastfm");
    std::fs::create_dir_all(&out).expect("mkdir");
    for n in 0..files {
        let generated = dir.join(&format!("gen-{n}"));
        let (rows, seed) = (rows.to_string(), (n + 1).to_string());
        lake_gen(
            "lastfm",
            &generated,
            &["--rows", &rows, "--users", "20", "--seed", &seed],
        );
        std::fs::copy(generated.join(PLAYS), out.join(format!("plays-{n}.tsv"))).expect("copy");
        if n == 0 {
            std::fs::copy(generated.join(PROFILES), out.join(PROFILES)).expect("copy");
        }
    }
    landing
}

/// `silver.lastfm_listens` of one clean bronze and silver run over `landing`.
fn clean_listens(landing: &std::path::Path) -> u64 {
    let dir = TempDir::new("clean");
    let (lake, args) = lake_of(&dir, landing);
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    run("silver", dir.path(), &strs(&args), &[]).ok();
    count(&lake, "silver.lastfm_listens")
}

#[test]
fn a_batch_whose_tables_committed_one_by_one_reaches_silver_whatever_ran_in_between() {
    let dir = TempDir::new("one-crash");
    let landing = lastfm_landing(&dir, 1, 6000);
    let want = clean_listens(&landing);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    // bronze dies between the tables of its batch: the profiles are in, the plays are not
    crash("bronze", &dir, &args, "committed:bronze.lastfm_profiles");
    let early = run("silver", dir.path(), &args, &[]).ok();
    assert!(
        early.stderr.contains("is not complete"),
        "silver says what holds it back: {}",
        early.stderr
    );
    let held = &early.detail("lastfm")["held_back_by"];
    assert_eq!(held["batch"], 1, "{}", early.stdout);
    assert_eq!(held["lane"], "lake.bronze", "{}", early.stdout);
    run("bronze", dir.path(), &args, &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
}

#[test]
fn a_dead_shards_batch_is_finished_by_a_plain_run_and_reaches_silver() {
    let dir = TempDir::new("dead-shard");
    let landing = lastfm_landing(&dir, 8, 2000);
    let want = clean_listens(&landing);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    let shard = [&args[..], &["--shard", "0/2"]].concat();
    // the shard dies after claiming its batch; a plain run lands the rest meanwhile
    crash("bronze", &dir, &shard, "committed:meta.landed_objects");
    let plain = run("bronze", dir.path(), &args, &[]).ok();
    assert!(
        plain.stdout.contains("batches_finished"),
        "the plain run finished the dead shard's batch: {}",
        plain.stderr
    );
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
    // the shard's retry finds nothing left to do; silver stays whole
    run("bronze", dir.path(), &shard, &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
}

#[test]
fn a_shards_batch_finished_by_its_own_retry_after_silver_ran_reaches_silver() {
    let dir = TempDir::new("late-shard");
    let landing = lastfm_landing(&dir, 8, 2000);
    let want = clean_listens(&landing);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    let shard = |i: &'static str| [&args[..], &["--shard", i]].concat();
    // shard 0 dies between its tables; shard 1 lands a later batch; silver runs in between
    crash("bronze", &dir, &shard("0/2"), "committed:bronze.lastfm_profiles");
    run("bronze", dir.path(), &shard("1/2"), &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    run("bronze", dir.path(), &shard("0/2"), &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
}
