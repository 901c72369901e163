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
    std::fs::create_dir_all(lake.join("_leases/gold")).expect("mkdir");
    let lease = lake.join("_leases/gold/other-run.json");
    let holder = |expires: &str| {
        format!(
            r#"{{"run_id":"other-run","pid":4242,"host":"elsewhere","expires_at":"{expires}"}}"#
        )
    };
    let args = local_args(&dir, &hand_landing());
    std::fs::write(&lease, holder("2999-01-01T00:00:00Z")).expect("write");
    let blocked = run("gold", dir.path(), &strs(&args), &[]);
    assert_eq!(blocked.code, 4, "{}", blocked.stderr);
    assert!(
        blocked.stderr.contains("other-run") && blocked.stderr.contains("pid 4242"),
        "{}",
        blocked.stderr
    );
    std::fs::write(&lease, holder("2000-01-01T00:00:00Z")).expect("write");
    let took_over = run("gold", dir.path(), &strs(&args), &[]).ok();
    assert!(
        took_over.stderr.contains("taking over the lease"),
        "{}",
        took_over.stderr
    );
    assert!(!lease.exists(), "removed by the run that took over");
    assert_eq!(
        std::fs::read_dir(lake.join("_leases/gold"))
            .expect("leases")
            .count(),
        0,
        "released at the end of the run"
    );

    // a holder on this host whose process is gone (a killed run) is taken over at once
    let mut gone = Command::new("true").spawn().expect("spawn");
    let _ = gone.wait();
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    std::fs::write(
        &lease,
        format!(
            r#"{{"run_id":"killed-run","pid":{},"host":"{host}","expires_at":"2999-01-01T00:00:00Z"}}"#,
            gone.id()
        ),
    )
    .expect("write");
    let retried = run("gold", dir.path(), &strs(&args), &[]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert!(
        retried.stderr.contains("taking over the lease"),
        "{}",
        retried.stderr
    );
}
