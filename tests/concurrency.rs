//! Runs at the same time: two bronze runs land the data once; a held lease blocks a second
//! run, an expired one is taken over.

use std::process::Command;

use lake_tests::*;

#[test]
fn two_bronze_runs_started_together_land_the_data_once() {
    let Some(s3) = S3::get() else { return };
    let bucket = hand_bucket(&s3, "race");
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let dir = TempDir::new("race");
    let args = ["--lake", lake.as_str(), "--landing", landing.as_str()];
    let (a, b) = (
        spawn("bronze", dir.path(), &args, &env),
        spawn("bronze", dir.path(), &args, &env),
    );
    let runs = [finish(a), finish(b)];
    for ran in &runs {
        assert!(
            ran.code == 0 || ran.code == 4,
            "exit {}: {}",
            ran.code,
            ran.stderr
        );
        assert!(!ran.stderr.contains("panicked"));
        if ran.code == 4 {
            assert!(ran.stderr.contains("another bronze run"), "{}", ran.stderr);
        }
    }
    assert!(runs.iter().any(|r| r.code == 0));
    // whichever order they ran in, every line is in bronze once
    let silver = run("silver", dir.path(), &args, &env).ok();
    assert_eq!(
        silver.num("rows_in"),
        152,
        "146 plays and 6 profiles, landed once"
    );
    assert_eq!(
        silver.reconciled("lastfm", "silver.lastfm_listens")["duplicates"],
        1
    );
}

#[test]
fn a_held_lease_blocks_a_second_run_and_an_expired_one_is_taken_over() {
    let dir = TempDir::new("lease");
    let lake = dir.join("lake");
    let args = local_args(&dir, &hand_landing());
    let all = r#"{"kind":"all"}"#;
    // live by the store's clock: written now, for an hour
    let lease = write_lease(&lake, "gold", "other-run", all, ELSEWHERE, 3_600_000, None);
    let blocked = run("gold", dir.path(), &strs(&args), &[]);
    assert_eq!(blocked.code, 4, "{}", blocked.stderr);
    assert!(
        blocked.stderr.contains("other-run") && blocked.stderr.contains("pid 4242"),
        "{}",
        blocked.stderr
    );
    // expired by the store's clock: written long ago, whatever the holder's own clock said
    write_lease(
        &lake,
        "gold",
        "other-run",
        all,
        ELSEWHERE,
        3_600_000,
        Some("2000-01-01"),
    );
    let took_over = run("gold", dir.path(), &strs(&args), &[]).ok();
    assert!(
        took_over.stderr.contains("taking over the lease"),
        "{}",
        took_over.stderr
    );
    assert!(
        took_over
            .stderr
            .contains("fenced off the commits of other-run"),
        "the dead run's commits are refused from now on: {}",
        took_over.stderr
    );
    assert!(
        !lease.exists(),
        "its old version is gone; its folder says it was fenced"
    );
    let leases = std::fs::read_dir(lake.join("_leases/gold")).expect("leases");
    let names: Vec<String> = leases
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| !n.starts_with('_')).count(),
        1,
        "the taken-over run's folder stays a while, marked fenced; this run released its own: {names:?}"
    );

    // a holder of this machine whose process is gone (a killed run) is taken over at once
    let mut gone = Command::new("true").spawn().expect("spawn");
    let _ = gone.wait();
    let holder = format!(
        r#"{{"host":"here","pid":{},"boot_id":"{}","pid_ns":"{}","started":1}}"#,
        gone.id(),
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .expect("boot id")
            .trim(),
        std::fs::read_link("/proc/self/ns/pid")
            .expect("pid namespace")
            .display()
    );
    write_lease(&lake, "gold", "killed-run", all, &holder, 3_600_000, None);
    let retried = run("gold", dir.path(), &strs(&args), &[]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert!(
        retried.stderr.contains("taking over the lease"),
        "{}",
        retried.stderr
    );

    // the same pid and boot in another pid namespace (another container) is not judged gone
    let other_ns = holder.replace("pid:[", "pid:[9");
    write_lease(
        &lake,
        "gold",
        "other-container",
        all,
        &other_ns,
        3_600_000,
        None,
    );
    let blocked = run("gold", dir.path(), &strs(&args), &[]);
    assert_eq!(blocked.code, 4, "{}", blocked.stderr);
}
