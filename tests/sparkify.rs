//! Sparkify through the three jobs: the real song and log data (unpacked, zipped, on S3), its
//! quirks, bad records and generated data.

use std::path::Path;
use std::process::Command;

use lake_tests::*;

#[test]
fn sparkify_zips_give_the_same_tables_as_the_unpacked_files_and_skip_macos_junk() {
    let (Some(tree), Some(zips)) = (shared_data("sparkify"), shared_data("sparkify-zips")) else {
        return;
    };
    let dir = TempDir::new("sparkify-bronze");
    let (unpacked, zipped) = (dir.join("unpacked"), dir.join("zipped"));
    sparkify_landing(&tree, &unpacked);
    std::fs::create_dir_all(zipped.join("sparkify")).expect("mkdir");
    for zip in ["song-data.zip", "log-data.zip"] {
        std::fs::copy(zips.join(zip), zipped.join("sparkify").join(zip)).expect("copy zip");
    }
    let lake_a = dir.join("lake-a").display().to_string();
    let lake_b = dir.join("lake-b").display().to_string();
    let a = run(
        "bronze",
        dir.path(),
        &[
            "--lake",
            &lake_a,
            "--landing",
            &unpacked.display().to_string(),
        ],
        &[],
    )
    .ok();
    let b = run(
        "bronze",
        dir.path(),
        &[
            "--lake",
            &lake_b,
            "--landing",
            &zipped.display().to_string(),
        ],
        &[],
    )
    .ok();
    for ran in [&a, &b] {
        // MANIFEST.md: 71 song records, 8,056 events; every record read is landed or quarantined
        assert_eq!(ran.rows_written("bronze.sparkify_songs"), 71);
        assert_eq!(ran.rows_written("bronze.sparkify_events"), 8056);
        assert_eq!(
            ran.num("rows_in"),
            ran.num("rows_out") + ran.num("rows_quarantined")
        );
        assert_eq!(ran.num("rows_quarantined"), 0);
    }
    let skipped: usize = b
        .source_detail("sparkify", "objects")
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|o| o["members_skipped"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    // 30 AppleDouble ._*.json and every .DS_Store (with their own ._ twins)
    assert!(
        skipped >= 34,
        "macOS junk members skipped and listed: {skipped}"
    );
}

/// Copies the real Sparkify tree (song_data, log_data) into `<landing>/sparkify/`.
fn sparkify_landing(tree: &Path, landing: &Path) {
    std::fs::create_dir_all(landing.join("sparkify")).expect("mkdir");
    for sub in ["song_data", "log_data"] {
        let ok = Command::new("cp")
            .args(["-r", &tree.join(sub).display().to_string()])
            .arg(landing.join("sparkify"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "copy {sub}");
    }
}

#[test]
fn sparkify_on_localstack_s3_gives_the_known_check_values() {
    let Some(tree) = shared_data("sparkify") else {
        return;
    };
    let Some(s3) = S3::get() else { return };
    let bucket = s3.bucket("sparkify");
    for sub in ["song_data", "log_data"] {
        bucket.put_tree(&format!("landing/sparkify/{sub}"), &tree.join(sub));
    }
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let dir = TempDir::new("sparkify-s3");
    let [bronze, silver, gold] =
        pipeline(dir.path(), &["--lake", &lake, "--landing", &landing], &env);
    // every record read is landed, skipped as junk or quarantined: 71 songs + 8,056 events
    assert_eq!(bronze.num("rows_in"), 71 + 8056);
    assert_eq!(
        bronze.num("rows_out") + bronze.num("rows_quarantined"),
        bronze.num("rows_in")
    );
    let written = |t: &str| silver.rows_written(&format!("silver.sparkify_{t}"));
    assert_eq!(
        (
            written("songs"),
            written("artists"),
            written("songplays"),
            written("users")
        ),
        (71, 69, 6820, 97),
        "known check values"
    );
    assert_eq!(silver.detail("sparkify")["songplays_matching_song_data"], 1);
    assert_eq!(
        silver.reconciled("sparkify", "silver.sparkify_songplays"),
        serde_json::json!({"rows_in": 8056, "rows_out": 6820, "rejected": 0, "other_pages": 1236})
    );
    assert_eq!(
        silver.rows_written("silver.sparkify_users_history"),
        97 + 9,
        "9 users change level"
    );
    let answer = String::from_utf8(bucket.get("lake/gold/sparkify/top_songs.tsv")).expect("utf-8");
    assert_eq!(answer.lines().count(), 11);
    assert!(
        gold.rows_written("gold.sparkify_daily_active_users") == 30,
        "one row per day of November"
    );
}

#[test]
fn sparkify_mojibake_is_repaired_on_real_titles_and_the_answer_equals_duckdb() {
    let Some(tree) = shared_data("sparkify") else {
        return;
    };
    let dir = TempDir::new("sparkify-local");
    let landing = dir.join("landing");
    sparkify_landing(&tree, &landing);
    let args = local_args(&dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    let lake = dir.join("lake").display().to_string();
    let rows = lake_sql(
        &lake,
        "SELECT \
           count(*) FILTER (WHERE song_title LIKE '%Ã%' OR song_title LIKE '%Â%' \
                            OR artist_name LIKE '%Ã%' OR artist_name LIKE '%Â%') AS mojibake, \
           count(*) FILTER (WHERE artist_name = 'Beyoncé') AS beyonce, \
           count(DISTINCT song_title) FILTER (WHERE song_title ~ '[^ -~]') AS non_ascii \
         FROM silver.sparkify_songplays",
        &[],
    );
    // MANIFEST.md: 153 titles and 82 names were double-encoded; none is left, all read right
    assert_eq!(rows[0]["mojibake"], 0, "no mojibake left");
    assert!(rows[0]["beyonce"].as_u64() > Some(0), "Beyoncé repaired");
    assert!(
        rows[0]["non_ascii"].as_u64() >= Some(100),
        "non-ASCII titles: {}",
        rows[0]
    );
    let matched = lake_sql(
        &lake,
        "SELECT song_title, artist_name, user_id, CAST(start_time AS BIGINT) / 1000 AS ms \
         FROM silver.sparkify_songplays WHERE song_id IS NOT NULL",
        &[],
    );
    assert_eq!(
        matched,
        [
            serde_json::json!({"song_title": "Setanta matins", "artist_name": "Elena", "user_id": "15", "ms": 1542837407796_u64})
        ]
    );
    // the same 20-minute question over Sparkify plays equals DuckDB's answer on those plays
    let plays = dir.join("plays.tsv");
    let exported = lake_column(
        &lake,
        "SELECT concat_ws(chr(9), user_id, to_char(start_time, '%Y-%m-%dT%H:%M:%SZ'), '', \
                          artist_name, '', song_title) FROM silver.sparkify_songplays",
    );
    std::fs::write(&plays, exported.join("\n") + "\n").expect("write plays");
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/sparkify/top_songs.tsv")).expect("answer");
    if let Some(peer) = peer_answer(&bench_peers_py(), "duckdb", &plays) {
        assert_eq!(answer, peer);
    }
}

#[test]
fn bad_sparkify_records_are_quarantined_with_their_reasons() {
    let dir = TempDir::new("sparkify-bad");
    let args = local_args(&dir, &fixture("sparkify-bad"));
    let [bronze, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    // bronze: 9 event lines + 3 song files; the cut-off JSON, the empty line and the empty file
    assert_eq!(
        (
            bronze.num("rows_in"),
            bronze.num("rows_out"),
            bronze.num("rows_quarantined")
        ),
        (12, 9, 3)
    );
    // events 1 and 9 are Setanta matins by Elena, as in the song data
    assert_eq!(silver.detail("sparkify")["songplays_matching_song_data"], 2);
    assert_eq!(
        silver.reconciled("sparkify", "silver.sparkify_songplays"),
        serde_json::json!({"rows_in": 7, "rows_out": 3, "rejected": 3, "other_pages": 1})
    );
    assert_eq!(
        silver.reconciled("sparkify", "silver.sparkify_songs"),
        serde_json::json!({"rows_in": 2, "rows_out": 1, "rejected": 1, "duplicates": 0})
    );
    assert_eq!(silver.rows_written("silver.sparkify_users"), 1);
    assert_eq!(
        silver.rows_written("silver.sparkify_users_history"),
        2,
        "paid, then free"
    );
    let lake = dir.join("lake").display().to_string();
    let reasons = lake_column(
        &lake,
        "SELECT reason FROM bronze.sparkify_quarantine UNION ALL \
         SELECT reason FROM silver.sparkify_quarantine ORDER BY 1",
    );
    for expected in [
        "a NextSong event without a user (userId is empty)",
        "duration is a string, expected number",
        "empty file (expected a JSON record)",
        "empty line (expected a JSON record)",
        "song is null, expected string",
        "ts is a string, expected number",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no reason {expected:?} in {reasons:?}"
        );
    }
    assert!(
        reasons.iter().any(|r| r.starts_with("not valid JSON")),
        "{reasons:?}"
    );
    let users = lake_sql(
        &lake,
        "SELECT user_id, level FROM silver.sparkify_users",
        &[],
    );
    assert_eq!(
        users,
        [serde_json::json!({"user_id": "15", "level": "free"})]
    );
}

#[test]
fn generated_sparkify_data_flows_through_all_three_jobs() {
    let dir = TempDir::new("sparkify-gen");
    let landing = dir.join("landing");
    lake_gen(
        "sparkify",
        &landing.join("sparkify"),
        &[
            "--songs", "60", "--events", "3000", "--users", "20", "--days", "5",
        ],
    );
    let args = local_args(&dir, &landing);
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(bronze.num("rows_quarantined"), 0);
    let songplays = silver.reconciled("sparkify", "silver.sparkify_songplays");
    assert_eq!(songplays["rejected"], 0, "{songplays}");
    let matching = &silver.detail("sparkify")["songplays_matching_song_data"];
    assert!(
        matching.as_u64() > Some(0),
        "generated plays match the song data: {matching}"
    );
    assert!(
        silver.rows_written("silver.sparkify_users_history")
            > silver.rows_written("silver.sparkify_users")
    );
    assert!(gold.rows_written("gold.sparkify_top_songs") == 10);
}

#[test]
fn silver_crashed_after_the_song_catalogue_then_rerun_builds_the_rest_as_a_clean_run() {
    let dir = TempDir::new("sparkify-crash");
    let landing = dir.join("landing");
    lake_gen(
        "sparkify",
        &landing.join("sparkify"),
        &["--songs", "30", "--events", "800", "--days", "2"],
    );
    let lake = |name: &str| dir.join(name).display().to_string();
    let args = |lake: &str| {
        let landing = landing.display().to_string();
        [
            "--lake".to_string(),
            lake.to_string(),
            "--landing".into(),
            landing,
        ]
    };
    let (clean, crashed) = (lake("clean"), lake("crashed"));
    for job in ["bronze", "silver"] {
        run(job, dir.path(), &strs(&args(&clean)), &[]).ok();
    }
    run("bronze", dir.path(), &strs(&args(&crashed)), &[]).ok();
    let fault = [("LAKE_TEST_FAULT", "committed:silver.sparkify_songs")];
    let stopped = run("silver", dir.path(), &strs(&args(&crashed)), &fault);
    assert!(
        stopped.stderr.contains("aborting here"),
        "{}",
        stopped.stderr
    );
    // the song plays read the catalogue committed before the crash
    let rerun = run("silver", dir.path(), &strs(&args(&crashed)), &[]).ok();
    assert!(
        rerun
            .detail("silver.sparkify_songs refresh")
            .as_str()
            .is_some_and(|r| r.starts_with("up to date")),
        "{}",
        rerun.stdout
    );
    let silver = |lake: &str| {
        let mut tables = snapshot(lake, &[], RUN_COLUMNS);
        tables.retain(|t, _| t.starts_with("silver."));
        tables
    };
    assert_same_lake(&silver(&crashed), &silver(&clean), "a crash after songs");
}

#[test]
fn a_backfill_of_months_reads_the_song_catalogue_it_leaves_alone() {
    let dir = TempDir::new("sparkify-backfill");
    let landing = dir.join("landing");
    lake_gen(
        "sparkify",
        &landing.join("sparkify"),
        &["--songs", "30", "--events", "800", "--days", "3"],
    );
    let args = local_args(&dir, &landing);
    let [_, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    let backfill = run(
        "silver",
        dir.path(),
        &[strs(&args), vec!["--from", "2018-11", "--to", "2018-11"]].concat(),
        &[],
    )
    .ok();
    assert_eq!(
        backfill.detail("silver.sparkify_songs refresh"),
        "not in the backfill: not partitioned by date"
    );
    assert_eq!(
        backfill.rows_written("silver.sparkify_songplays"),
        silver.rows_written("silver.sparkify_songplays"),
        "every play is in November 2018"
    );
}
