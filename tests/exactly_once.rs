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
    std::fs::create_dir_all(landing.join("lastfm")).expect("mkdir");
    for n in 0..files {
        deliver_plays(dir, &landing, &format!("plays-{n}.tsv"), rows, n + 1, None);
    }
    let generated = dir.join("gen-1-plays-0.tsv");
    std::fs::copy(
        generated.join(PROFILES),
        landing.join("lastfm").join(PROFILES),
    )
    .expect("copy");
    landing
}

/// Delivers `rows` Last.fm plays (generator seed `seed`, from the day `start` if given) into
/// `landing` as the object `lastfm/<name>`, new or replacing one.
fn deliver_plays(
    dir: &TempDir,
    landing: &std::path::Path,
    name: &str,
    rows: u32,
    seed: u32,
    start: Option<&str>,
) {
    let generated = dir.join(&format!("gen-{seed}-{name}"));
    let (rows, seed) = (rows.to_string(), seed.to_string());
    let mut args = vec!["--rows", &rows, "--users", "20", "--seed", &seed];
    if let Some(start) = start {
        args.extend(["--start", start]);
    }
    lake_gen("lastfm", &generated, &args);
    let to = landing.join("lastfm").join(name);
    std::fs::copy(generated.join(PLAYS), to).expect("deliver");
}

/// `silver.lastfm_listens` of one clean bronze and silver run over `landing`.
fn clean_listens(landing: &std::path::Path) -> u64 {
    clean(landing, "silver.lastfm_listens")
}

/// The rows of `table` after one clean bronze and silver run over `landing`.
fn clean(landing: &std::path::Path, table: &str) -> u64 {
    let dir = TempDir::new("clean");
    let (lake, args) = lake_of(&dir, landing);
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    run("silver", dir.path(), &strs(&args), &[]).ok();
    count(&lake, table)
}

/// A `lake.toml` in the jobs' working directory that gives leases a 3 s TTL.
fn short_leases(dir: &TempDir) {
    std::fs::write(dir.join("lake.toml"), "lease_ttl_secs = 3\n").expect("lake.toml");
}

/// Past a 3 s lease by the store's clock (its timestamps are allowed 2 s of slack).
const PAST_THE_LEASE: std::time::Duration = std::time::Duration::from_secs(7);

/// Plays the hand fixture's landing has no copy of: a later delivery, with a line silver
/// rejects.
const LATER_PLAYS: &str = "user_000001\t2009-05-01T10:00:00Z\t\tLate Artist\t\tLate Song\n\
user_000002\t2009-05-02T11:00:00Z\t\tLate Artist\t\tLate Song 2\n\
user_000001\tnot-a-time\t\tX\t\tY\n";

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
    crash(
        "bronze",
        &dir,
        &shard("0/2"),
        "committed:bronze.lastfm_profiles",
    );
    run("bronze", dir.path(), &shard("1/2"), &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    run("bronze", dir.path(), &shard("0/2"), &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
}

#[test]
fn a_bronze_run_that_stalled_past_its_lease_cannot_land_its_batch_after_another_finished_it() {
    let dir = TempDir::new("stalled-bronze");
    short_leases(&dir);
    let landing = lastfm_landing(&dir, 2, 3000);
    let want = clean(&landing, "bronze.lastfm_plays");
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    // a run stops (a pause, a migrated VM) with its batch claimed, about to commit its plays
    let stalled = pause_at(
        "bronze",
        dir.path(),
        &args,
        &[],
        "committing:bronze.lastfm_plays",
    );
    std::thread::sleep(PAST_THE_LEASE);
    let took_over = run("bronze", dir.path(), &args, &[]).ok();
    assert!(
        took_over.stderr.contains("taking over the lease")
            && took_over.stdout.contains("batches_finished"),
        "the next run took over and finished the batch: {}",
        took_over.stderr
    );
    // the stalled run wakes up: it must not land the batch a second time
    let woke = stalled.resume();
    assert_eq!(woke.code, 4, "{}", woke.stderr);
    assert!(woke.stderr.contains("lease"), "{}", woke.stderr);
    assert_eq!(count(&lake, "bronze.lastfm_plays"), want, "every line once");
}

#[test]
fn a_silver_run_that_stalled_past_its_lease_cannot_append_rejects_another_run_appended() {
    let dir = TempDir::new("stalled-silver");
    short_leases(&dir);
    let landing = hand_landing_copy(&dir);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    run("bronze", dir.path(), &args, &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    std::fs::write(landing.join("lastfm/later.tsv"), LATER_PLAYS).expect("deliver");
    run("bronze", dir.path(), &args, &[]).ok();
    let want = count(&lake, "silver.lastfm_quarantine") + 1;
    // the run has replaced the months and stops before appending the new batch's rejects
    let stalled = pause_at(
        "silver",
        dir.path(),
        &args,
        &[],
        "committing:silver.lastfm_quarantine",
    );
    std::thread::sleep(PAST_THE_LEASE);
    let took_over = run("silver", dir.path(), &args, &[]).ok();
    assert!(
        took_over.stderr.contains("taking over the lease"),
        "{}",
        took_over.stderr
    );
    let woke = stalled.resume();
    assert_eq!(woke.code, 4, "{}", woke.stderr);
    assert_eq!(
        count(&lake, "silver.lastfm_quarantine"),
        want,
        "the new reject once"
    );
}

#[test]
fn an_object_changed_after_its_claim_is_never_landed_under_the_claimed_identity() {
    let dir = TempDir::new("changed");
    let landing = lastfm_landing(&dir, 1, 2000);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    // bronze stops right after claiming the plays at their ETag
    let stalled = pause_at(
        "bronze",
        dir.path(),
        &args,
        &[],
        "committed:meta.landed_objects",
    );
    // the object is replaced by another delivery under the same name
    deliver_plays(&dir, &landing, "plays-0.tsv", 1500, 77, None);
    let first = stalled.resume().ok();
    assert!(
        first.stderr.contains("changed after it was claimed"),
        "{}",
        first.stderr
    );
    // the next run lands the new version as such
    let second = run("bronze", dir.path(), &args, &[]).ok();
    assert_eq!(
        second
            .source_detail("lastfm", "objects_changed")
            .as_array()
            .map(Vec::len),
        Some(1),
        "{}",
        second.stdout
    );
    let want = clean(&landing, "bronze.lastfm_plays");
    assert_eq!(
        count(&lake, "bronze.lastfm_plays"),
        want,
        "the new version once, nothing of the claimed one"
    );
    let want = clean(&landing, "silver.lastfm_listens");
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
}

#[test]
fn parts_started_on_either_side_of_a_delivery_cut_one_plan_and_the_lake_is_whole() {
    let dir = TempDir::new("plan");
    let landing = lastfm_landing(&dir, 1, 4000);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    let part = |i: &'static str| [&args[..], &["--part", i]].concat();
    run("bronze", dir.path(), &args, &[]).ok();
    let first = run("silver", dir.path(), &part("0/2"), &[]).ok();
    // a delivery lands between the parts' starts
    deliver_plays(
        &dir,
        &landing,
        "plays-later.tsv",
        2000,
        8,
        Some("2010-01-01"),
    );
    run("bronze", dir.path(), &args, &[]).ok();
    let second = run("silver", dir.path(), &part("1/2"), &[]).ok();
    let (a, b) = (first.detail("part"), second.detail("part"));
    assert_eq!(
        a["through_batch"], b["through_batch"],
        "both parts read what the plan pinned: {a} {b}"
    );
    let (a_to, b_from) = (a["to"].as_str(), b["from"].as_str());
    assert!(
        a_to.zip(b_from).is_some_and(|(t, f)| t < f),
        "the plan's ranges follow each other: {a} {b}"
    );
    let rest = run("silver", dir.path(), &args, &[]).ok();
    assert!(
        rest.detail("silver.lastfm_listens refresh")
            .as_str()
            .is_some_and(|r| r.starts_with("months replaced")),
        "the parts' state, then the new batch: {}",
        rest.stdout
    );
    assert_eq!(
        count(&lake, "silver.lastfm_listens"),
        clean_listens(&landing)
    );
}

#[test]
fn a_maintenance_run_has_a_lease_of_its_own_even_where_every_process_is_pid_1() {
    let dir = TempDir::new("maintenance");
    let landing = hand_landing_copy(&dir);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    run("bronze", dir.path(), &args, &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    // another container's maintenance, pid 1 there as here in a container
    let held = write_lease(
        std::path::Path::new(&lake),
        "silver",
        "maintenance-1",
        r#"{"kind":"all"}"#,
        r#"{"host":"lake-maintenance-7d9f","pid":1,"boot_id":"another-node"}"#,
        3_600_000,
        None,
    );
    let blocked = run(
        "lake",
        dir.path(),
        &["--lake", &lake, "optimize", "silver"],
        &[],
    );
    assert_eq!(blocked.code, 4, "{}", blocked.stderr);
    assert!(
        blocked.stderr.contains("maintenance-1"),
        "{}",
        blocked.stderr
    );
    assert!(held.exists(), "the other run's lease is untouched");
    std::fs::remove_dir_all(held.parent().expect("its folder")).expect("release");
    let ran = run(
        "lake",
        dir.path(),
        &["--lake", &lake, "optimize", "silver"],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

#[test]
fn a_batch_number_taken_by_a_run_that_died_before_claiming_objects_holds_nothing_back() {
    let dir = TempDir::new("void-batch");
    let landing = lastfm_landing(&dir, 1, 2000);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    run("bronze", dir.path(), &args, &[]).ok();
    deliver_plays(&dir, &landing, "plays-more.tsv", 1000, 3, None);
    // the run dies between taking its batch number and recording the batch's objects
    crash("bronze", &dir, &args, "bronze.batch_taken");
    let silver = run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(
        silver.detail("lastfm")["held_back_by"]["batch"],
        2,
        "{}",
        silver.stdout
    );
    let bronze = run("bronze", dir.path(), &args, &[]).ok();
    assert!(
        bronze.stdout.contains("batches_finished"),
        "the empty batch is finished: {}",
        bronze.stderr
    );
    let silver = run("silver", dir.path(), &args, &[]).ok();
    assert!(
        silver.detail("lastfm")["held_back_by"].is_null(),
        "{}",
        silver.stdout
    );
    assert_eq!(
        count(&lake, "silver.lastfm_listens"),
        clean_listens(&landing)
    );
}

#[test]
fn a_batch_landed_while_silver_reads_is_taken_in_by_the_next_silver_run() {
    let dir = TempDir::new("landed-meanwhile");
    let landing = lastfm_landing(&dir, 1, 2000);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    run("bronze", dir.path(), &args, &[]).ok();
    // silver has taken its snapshot of bronze, and stops there…
    let reading = pause_at("silver", dir.path(), &args, &[], "silver.pinned");
    // …while bronze lands a second batch (and notes it complete)
    deliver_plays(
        &dir,
        &landing,
        "plays-more.tsv",
        1500,
        5,
        Some("2010-01-01"),
    );
    run("bronze", dir.path(), &args, &[]).ok();
    let first = reading.resume().ok();
    assert_eq!(
        first.detail("lastfm")["bronze_batches"]["through"],
        1,
        "it took in what its snapshot holds: {}",
        first.stdout
    );
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(
        count(&lake, "silver.lastfm_listens"),
        clean_listens(&landing)
    );
}

#[test]
fn a_part_carried_out_after_a_plain_run_consumed_more_never_rolls_its_months_back() {
    let dir = TempDir::new("late-part");
    let landing = lastfm_landing(&dir, 1, 4000);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    let part = |i: &'static str| [&args[..], &["--part", i]].concat();
    run("bronze", dir.path(), &args, &[]).ok();
    run("silver", dir.path(), &part("0/2"), &[]).ok();
    // part 1 dies before it carries the split out
    crash(
        "silver",
        &dir,
        &part("1/2"),
        "committing:silver.lastfm_listens",
    );
    // a delivery in the months of part 1, consumed by a plain run
    deliver_plays(
        &dir,
        &landing,
        "plays-more.tsv",
        1500,
        6,
        Some("2008-06-01"),
    );
    run("bronze", dir.path(), &args, &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    // part 1's retry carries out the split it belongs to, over what the lake holds now
    let late = run("silver", dir.path(), &part("1/2"), &[]).ok();
    assert_eq!(late.detail("part")["through_batch"], 1, "{}", late.stdout);
    let want = clean_listens(&landing);
    assert_eq!(
        count(&lake, "silver.lastfm_listens"),
        want,
        "nothing rolled back"
    );
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(count(&lake, "silver.lastfm_listens"), want);
}

#[test]
fn a_part_of_an_older_split_never_writes_over_a_part_of_a_newer_one() {
    let dir = TempDir::new("two-splits");
    let landing = lastfm_landing(&dir, 1, 4000);
    let (lake, args) = lake_of(&dir, &landing);
    let args = strs(&args);
    let part = |i: &'static str| [&args[..], &["--part", i]].concat();
    run("bronze", dir.path(), &args, &[]).ok();
    run("silver", dir.path(), &part("0/2"), &[]).ok();
    // part 1 of the first split stops before its commit…
    let older = pause_at(
        "silver",
        dir.path(),
        &part("1/2"),
        &[],
        "committing:silver.lastfm_listens",
    );
    // …while bronze grows and part 0, done with the first split, carries out a second one
    deliver_plays(
        &dir,
        &landing,
        "plays-more.tsv",
        2000,
        9,
        Some("2006-01-01"),
    );
    run("bronze", dir.path(), &args, &[]).ok();
    let newer = run("silver", dir.path(), &part("0/2"), &[]).ok();
    assert_eq!(newer.detail("part")["through_batch"], 2, "{}", newer.stdout);
    let woke = older.resume();
    assert_eq!(woke.code, 4, "{}", woke.stderr);
    assert!(woke.stderr.contains("lake.silver.part"), "{}", woke.stderr);
    // its retry carries out the second split; the plain run finds the parts' state
    run("silver", dir.path(), &part("1/2"), &[]).ok();
    run("silver", dir.path(), &args, &[]).ok();
    assert_eq!(
        count(&lake, "silver.lastfm_listens"),
        clean_listens(&landing)
    );
}
