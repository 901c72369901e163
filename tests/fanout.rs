//! Past one machine: bronze fanned out by shard and silver by month range, each part its own
//! process, on LocalStack. Parts of one split run together and make the lake one run makes;
//! overlapping ranges never write at the same time; a crashed part's retry finishes the job.

use lake_tests::*;

/// A landing zone with every source, small, spread over many months and many objects.
fn landing(dir: &TempDir) -> std::path::PathBuf {
    let landing = dir.join("landing");
    let out = |source: &str| landing.join(source);
    lake_gen(
        "lastfm",
        &out("lastfm"),
        &["--rows", "6000", "--users", "20"],
    );
    lake_gen(
        "sparkify",
        &out("sparkify"),
        &["--songs", "40", "--events", "2000", "--users", "20"],
    );
    lake_gen(
        "deezer",
        &out("deezer"),
        &[
            "--days",
            "3",
            "--streams",
            "2000",
            "--users",
            "200",
            "--songs",
            "300",
        ],
    );
    lake_gen(
        "eventsim",
        &out("eventsim"),
        &["--days", "2", "--users", "20"],
    );
    landing
}

/// Columns that differ between a fanned-out lake and one run's: run ids and times, and the
/// bronze batch numbers (a shard takes its own).
const NOT_COMPARED: &[&str] = &[
    "charted_at",
    "window_batch",
    "run_id",
    "ingested_at",
    "quarantined_at",
    "landed_at",
    "batch",
];

/// Runs `job` once per part of `count` with `--<flag> i/count`, all started together.
fn together(job: &str, flag: &str, count: u32, args: &[&str], env: &[(&str, &str)]) -> Vec<Ran> {
    let dir = TempDir::new("parts");
    let children: Vec<_> = (0..count)
        .map(|i| {
            let part = format!("{i}/{count}");
            spawn(
                job,
                dir.path(),
                &[args, &[flag, part.as_str()]].concat(),
                env,
            )
        })
        .collect();
    children.into_iter().map(finish).collect()
}

fn args<'a>(lake: &'a str, landing: &'a str) -> [&'a str; 4] {
    ["--lake", lake, "--landing", landing]
}

type Lake = std::collections::BTreeMap<String, Vec<String>>;

/// A bucket with the landing zone under `landing/`, and the lake one bronze, silver and gold
/// run makes of it (under `one/`).
fn landed_and_run_once(s3: &S3, tag: &str, env: &[(&str, &str)]) -> (TempDir, Bucket, Lake) {
    let dir = TempDir::new(tag);
    let bucket = s3.bucket(tag);
    bucket.put_tree("landing", &landing(&dir));
    let (lake, landing) = (bucket.url("one"), bucket.url("landing"));
    pipeline(dir.path(), &args(&lake, &landing), env);
    let want = snapshot(&lake, env, NOT_COMPARED);
    (dir, bucket, want)
}

#[test]
fn four_shards_and_four_parts_started_together_make_the_lake_of_one_run() {
    let Some(s3) = S3::get() else { return };
    let env = s3.env();
    let env = pairs(&env);
    let (dir, bucket, want) = landed_and_run_once(&s3, "fanout", &env);

    let (lake, landing) = (bucket.url("fan"), bucket.url("landing"));
    let args = args(&lake, &landing);
    let shards = together("bronze", "--shard", 4, &args, &env);
    for (i, ran) in shards.iter().enumerate() {
        assert_eq!(ran.code, 0, "bronze --shard {i}/4: {}", ran.stderr);
    }
    // every landing object exactly once, and no batch number claimed by two shards
    let objects = lake_sql(
        &lake,
        "SELECT object, count(*) AS claims FROM meta.landed_objects GROUP BY object",
        &env,
    );
    assert_eq!(objects.len(), files_under(&dir.join("landing")).len());
    assert!(objects.iter().all(|o| o["claims"] == 1), "{objects:?}");
    let shared = lake_sql(
        &lake,
        "SELECT batch FROM meta.landed_objects GROUP BY batch HAVING count(DISTINCT run_id) > 1",
        &env,
    );
    assert!(
        shared.is_empty(),
        "batches claimed by two shards: {shared:?}"
    );
    let landed: u64 = shards.iter().map(|r| r.num("rows_out")).sum();

    let parts = together("silver", "--part", 4, &args, &env);
    for (i, ran) in parts.iter().enumerate() {
        assert_eq!(ran.code, 0, "silver --part {i}/4: {}", ran.stderr);
    }
    let ranges: Vec<&serde_json::Value> = parts.iter().map(|r| r.detail("part")).collect();
    assert_eq!(ranges[0]["from"], serde_json::Value::Null, "{ranges:?}");
    assert_eq!(ranges[3]["to"], serde_json::Value::Null, "{ranges:?}");
    // then the plain run: dimensions and quarantines; the month-partitioned tables are the parts'
    let rest = run("silver", dir.path(), &args, &env).ok();
    assert!(
        rest.detail("silver.lastfm_listens refresh")
            .as_str()
            .is_some_and(|r| r.starts_with("up to date: the parts")),
        "{}",
        rest.stdout
    );
    assert_eq!(
        rest.num("rows_in"),
        landed,
        "every bronze record counted once"
    );
    run("gold", dir.path(), &args, &env).ok();
    assert_same_lake(&snapshot(&lake, &env, NOT_COMPARED), &want, "fanned out");
}

#[test]
fn shards_started_together_on_a_new_local_lake_all_land() {
    // every table is created by whichever shard gets there first; the others use it
    for round in 0..3 {
        let dir = TempDir::new(&format!("new-lake-{round}"));
        let landing = dir.join("landing");
        lake_gen(
            "lastfm",
            &landing.join("lastfm"),
            &["--rows", "2000", "--users", "10"],
        );
        lake_gen(
            "deezer",
            &landing.join("deezer"),
            &["--days", "4", "--streams", "200"],
        );
        let args = local_args(&dir, &landing);
        let shards = together("bronze", "--shard", 4, &strs(&args), &[]);
        for (i, ran) in shards.iter().enumerate() {
            assert_eq!(ran.code, 0, "round {round}, shard {i}/4: {}", ran.stderr);
        }
        let landed: u64 = shards.iter().map(|r| r.num("rows_in")).sum();
        let whole = dir.join("whole").display().to_string();
        let landing = landing.display().to_string();
        let once = run(
            "bronze",
            dir.path(),
            &["--lake", &whole, "--landing", &landing],
            &[],
        )
        .ok();
        assert_eq!(
            landed,
            once.num("rows_in"),
            "round {round}: every line once"
        );
    }
}

#[test]
fn overlapping_ranges_never_write_together_and_disjoint_ones_do() {
    let dir = TempDir::new("ranges");
    let landing = dir.join("landing");
    lake_gen(
        "lastfm",
        &landing.join("lastfm"),
        &["--rows", "4000", "--users", "10"],
    );
    let args = local_args(&dir, &landing);
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    // a run holding 2007-01..2007-06 (a live holder on another host)
    let holder = write_lease(
        &dir.join("lake"),
        "silver",
        "range-run",
        r#"{"kind":"days","from":"2007-01-01","to":"2007-06-30"}"#,
        ELSEWHERE,
        3_600_000,
        None,
    );
    let range = |from: &str, to: &str| {
        let mut a = strs(&args);
        a.extend(["--from", from, "--to", to]);
        run("silver", dir.path(), &a, &[])
    };
    for (from, to) in [("2007-06", "2007-08"), ("2006-01", "2007-01")] {
        let blocked = range(from, to);
        assert_eq!(blocked.code, 4, "{from}..{to}: {}", blocked.stderr);
        assert!(blocked.stderr.contains("range-run"), "{}", blocked.stderr);
    }
    for (from, to) in [("2007-07", "2007-12"), ("2005-01", "2006-12")] {
        let ran = range(from, to);
        assert_eq!(ran.code, 0, "{from}..{to} is disjoint: {}", ran.stderr);
    }
    let whole = run("silver", dir.path(), &strs(&args), &[]);
    assert_eq!(whole.code, 4, "a whole run excludes every range run");
    let part = run(
        "silver",
        dir.path(),
        &[strs(&args), vec!["--part", "0/2"]].concat(),
        &[],
    );
    assert_eq!(
        part.code, 4,
        "a part is not a declared range: it excludes range runs"
    );
    std::fs::remove_file(holder).expect("release");

    // two overlapping runs started together: never both at work at the same time
    for _ in 0..3 {
        let mut a = strs(&args);
        a.extend(["--from", "2006-01", "--to", "2008-12"]);
        let mut b = strs(&args);
        b.extend(["--from", "2008-06"]);
        let (x, y) = (
            spawn("silver", dir.path(), &a, &[]),
            spawn("silver", dir.path(), &b, &[]),
        );
        let runs = [finish(x), finish(y)];
        for r in &runs {
            assert!(r.code == 0 || r.code == 4, "{}", r.stderr);
        }
        if runs.iter().all(|r| r.code == 0) {
            // the one that waited took the lease after the other released it
            let span = |r: &Ran| {
                let at = |what: &str| {
                    let line = r.stderr.lines().find(|l| l.contains(what));
                    let time = line.and_then(|l| l.split_whitespace().next());
                    time.unwrap_or_default().to_string()
                };
                (at("lease taken"), at("lease released"))
            };
            let ((s1, f1), (s2, f2)) = (span(&runs[0]), span(&runs[1]));
            assert!(
                !s1.is_empty() && !s2.is_empty() && (f1 <= s2 || f2 <= s1),
                "both wrote at once: {s1}..{f1} and {s2}..{f2}"
            );
        } else {
            let busy = runs.iter().find(|r| r.code == 4).map(|r| r.stderr.as_str());
            assert!(busy.is_some_and(|e| e.contains("overlaps")), "{busy:?}");
        }
    }
}

#[test]
fn a_crashed_shard_and_a_crashed_part_retried_leave_the_lake_of_a_clean_run() {
    let Some(s3) = S3::get() else { return };
    let env = s3.env();
    let env = pairs(&env);
    let (dir, bucket, want) = landed_and_run_once(&s3, "fan-crash", &env);

    let (lake, landing) = (bucket.url("fan"), bucket.url("landing"));
    let args = args(&lake, &landing);
    let with = |i: u32, flag: &'static str| {
        let mut a = args.to_vec();
        a.extend([flag, ["0/2", "1/2"][i as usize]]);
        a
    };
    let crash = |point: &'static str| {
        let mut e = env.clone();
        e.push(("LAKE_TEST_FAULT", point));
        e
    };
    // shard 1 stops after claiming its first batch; its retry lands that batch, then the rest
    let crashed = run(
        "bronze",
        dir.path(),
        &with(1, "--shard"),
        &crash("committed:meta.landed_objects"),
    );
    assert_ne!(
        crashed.code, 0,
        "the fault point was reached: {}",
        crashed.stderr
    );
    run("bronze", dir.path(), &with(0, "--shard"), &env).ok();
    let retried = run("bronze", dir.path(), &with(1, "--shard"), &env).ok();
    assert!(
        retried.stdout.contains("batches_finished"),
        "the retry finished the claimed batch: {}",
        retried.stdout
    );
    // part 0 stops after committing the listens; its retry redoes the part
    let crashed = run(
        "silver",
        dir.path(),
        &with(0, "--part"),
        &crash("committed:silver.lastfm_listens"),
    );
    assert_ne!(
        crashed.code, 0,
        "the fault point was reached: {}",
        crashed.stderr
    );
    run("silver", dir.path(), &with(1, "--part"), &env).ok();
    run("silver", dir.path(), &with(0, "--part"), &env).ok();
    let rest = run("silver", dir.path(), &args, &env).ok();
    assert!(
        rest.detail("silver.eventsim_listen_events refresh")
            .as_str()
            .is_some_and(|r| r.starts_with("up to date: the parts")),
        "{}",
        rest.stdout
    );
    run("gold", dir.path(), &args, &env).ok();
    assert_same_lake(
        &snapshot(&lake, &env, NOT_COMPARED),
        &want,
        "after the retries",
    );
}
