//! Last.fm 1K through the three jobs, on local and LocalStack S3 lakes: the hand fixture's
//! hand-derived answer, every line accounted for, the real head and generated data against the
//! reference engines.

use std::path::Path;
use std::process::Command;

use lake_tests::*;

#[test]
fn hand_fixture_gives_the_hand_derived_answer_and_every_line_is_accounted_for() {
    let dir = TempDir::new("hand");
    let out = dir.join("answer.tsv");
    let args = local_args(&dir, &hand_landing());
    let [bronze, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    let gold = run(
        "gold",
        dir.path(),
        &[
            strs(&args),
            vec!["--full-refresh", "--out", out.to_str().unwrap_or_default()],
        ]
        .concat(),
        &[],
    )
    .ok();

    // bronze: 150 play lines + 7 profile lines (header excluded); 4 + 1 cannot be landed
    assert_eq!(
        (
            bronze.num("rows_in"),
            bronze.num("rows_out"),
            bronze.num("rows_quarantined")
        ),
        (157, 152, 5)
    );
    assert_eq!(bronze.rows_written("bronze.lastfm_plays"), 146);
    assert_eq!(bronze.rows_written("bronze.lastfm_profiles"), 6);
    // silver: 8 plays and 2 profiles break a rule, 1 play is an exact duplicate
    assert_eq!(silver.rows_written("silver.lastfm_listens"), 137);
    assert_eq!(silver.rows_written("silver.lastfm_users"), 4);
    assert_eq!(silver.num("rows_quarantined"), 10);
    assert_eq!(
        silver.reconciled("lastfm", "silver.lastfm_listens"),
        serde_json::json!({"rows_in": 146, "rows_out": 137, "rejected": 8, "duplicates": 1})
    );
    assert_eq!(
        silver.reconciled("lastfm", "silver.lastfm_users"),
        serde_json::json!({"rows_in": 6, "rows_out": 4, "rejected": 2, "duplicates": 0})
    );
    // gold
    assert_eq!(gold.rows_written("gold.lastfm_sessions"), 82);
    assert_eq!(gold.rows_written("gold.lastfm_top_sessions"), 50);
    let answer = std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv"))
        .expect("answer in the lake");
    assert_eq!(answer, hand_expected());
    assert_eq!(
        std::fs::read_to_string(&out).ok(),
        Some(hand_expected()),
        "--out copy"
    );
    assert!(
        gold.stderr.contains("top_songs.tsv"),
        "gold says where it wrote the answer"
    );
    assert!(
        gold.stderr.contains("gold succeeded: 137 rows in"),
        "one-line summary: {}",
        gold.stderr
    );
}

#[test]
fn quarantine_rows_say_why_and_where() {
    let dir = TempDir::new("reasons");
    let args = local_args(&dir, &hand_landing());
    pipeline(dir.path(), &strs(&args), &[]);
    let lake = dir.join("lake").display().to_string();
    let text = lake_column(
        &lake,
        "SELECT layer || ' ' || source_line || ' ' || reason FROM ( \
           SELECT 'bronze' AS layer, source_line, reason FROM bronze.lastfm_quarantine \
           UNION ALL \
           SELECT 'silver' AS layer, source_line, reason FROM silver.lastfm_quarantine) \
         ORDER BY layer, source_line",
    )
    .join("\n");
    for expected in [
        "expected 6 tab-separated fields, found 4",
        "expected 6 tab-separated fields, found 7",
        "not valid UTF-8",
        "empty line",
        "expected 5 tab-separated fields, found 4",
        "user_id is empty or only white space",
        "timestamp '2009-13-45T99:61:00Z' is not a valid YYYY-MM-DDTHH:MM:SSZ",
        "timestamp '2009-02-29T10:00:00Z' is not a valid YYYY-MM-DDTHH:MM:SSZ",
        "artist_name is empty or only white space",
        "track_name is empty or only white space",
        "age 'abc' is not a whole number",
        "registered 'Foo 99, 2006' is not a date like 'Aug 13, 2006'",
    ] {
        assert!(
            text.contains(expected),
            "no quarantine reason {expected:?} in:\n{text}"
        );
    }
    assert_eq!(text.lines().count(), 15, "{text}");
}

#[test]
fn rerunning_the_jobs_lands_nothing_twice_and_gives_the_same_answer() {
    let dir = TempDir::new("rerun");
    let args = local_args(&dir, &hand_landing());
    pipeline(dir.path(), &strs(&args), &[]);
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(bronze.num("rows_in"), 0);
    assert_eq!(bronze.source_detail("lastfm", "nothing_new"), true);
    assert_eq!(bronze.source_detail("lastfm", "objects_already_landed"), 2);
    for job in [&silver, &gold] {
        assert_eq!(job.num("rows_in"), 0, "{}", job.stdout);
        assert_eq!(job.record["outputs"], serde_json::json!([]), "no commit");
    }
    assert_eq!(
        silver.detail("silver.lastfm_listens refresh"),
        "up to date: nothing new below it since it was built"
    );
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    assert_eq!(answer, hand_expected());
}

#[test]
fn a_silver_run_that_explains_its_writes_builds_the_same_tables() {
    // an explained write runs its query twice, over the same taps of bronze
    let landing = hand_landing();
    let plain = TempDir::new("explain-plain");
    let explained = TempDir::new("explain-all");
    for (dir, env) in [
        (&plain, vec![]),
        (&explained, vec![("LAKE_EXPLAIN_ANALYZE", "all")]),
    ] {
        let args = local_args(dir, &landing);
        run("bronze", dir.path(), &strs(&args), &[]).ok();
        let silver = run("silver", dir.path(), &strs(&args), &env).ok();
        assert!(silver.num("rows_quarantined") > 0, "{}", silver.stdout);
    }
    let lake = |dir: &TempDir| dir.join("lake").display().to_string();
    assert_same_lake(
        &snapshot(&lake(&explained), &[], RUN_COLUMNS),
        &snapshot(&lake(&plain), &[], RUN_COLUMNS),
        "explained",
    );
}

#[test]
fn a_new_delivery_recharts_only_the_weeks_of_the_months_it_changed() {
    let dir = TempDir::new("new-weeks");
    let landing = hand_landing_copy(&dir);
    let args = local_args(&dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    // a second delivery: plays in a month the lake has no play of, and one in a month it has
    std::fs::write(
        landing.join("lastfm/plays-later.tsv"),
        "user_000001\t2009-03-02T10:00:00Z\t\tCake\t\tJolene\n\
         user_000001\t2009-03-02T10:04:00Z\t\tThe Knife\t\tHeartbeats\n\
         user_000002\t2009-03-31T23:59:59Z\t\tCake\t\tJolene\n\
         user_000004\t2008-07-15T12:00:00Z\t\tCake\t\tJolene\n",
    )
    .expect("the later plays");
    let [_, _, gold] = pipeline(dir.path(), &strs(&args), &[]);
    // the weeks overlapping 2008-07 and 2009-03, dated by their Sundays
    let refresh = gold.detail("gold.lastfm_country_top50 refresh");
    assert_eq!(
        refresh,
        "days replaced: 2008-07-06, 2008-07-13, 2008-07-20, 2008-07-27, 2008-08-03, \
         2009-03-01, 2009-03-08, 2009-03-15, 2009-03-22, 2009-03-29, 2009-04-05",
        "{}",
        gold.stdout
    );
    assert_gold_of_one_run(&dir, &landing, "new-weeks-once");
    // and the next run has nothing to chart
    let [_, _, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(
        gold.detail("gold.lastfm_country_top50 refresh"),
        "up to date: nothing new below it since it was built"
    );
}

#[test]
fn a_delivery_of_later_plays_rebuilds_sessions_from_the_first_one_it_reaches() {
    let dir = TempDir::new("later-sessions");
    let landing = hand_landing_copy(&dir);
    let args = local_args(&dir, &landing);
    // a session that starts at the end of March, and one earlier in the month
    std::fs::write(
        landing.join("lastfm/plays-march.tsv"),
        "user_000002\t2009-03-31T23:50:00Z\t\tCake\t\tJolene\n\
         user_000002\t2009-03-31T23:59:59Z\t\tThe Knife\t\tHeartbeats\n\
         user_000005\t2009-03-05T09:00:00Z\t\tCake\t\tJolene\n",
    )
    .expect("the March plays");
    pipeline(dir.path(), &strs(&args), &[]);
    // April's delivery: a play that continues the March session (601 s after its last play),
    // and a second session of a user whose first one is in January
    std::fs::write(
        landing.join("lastfm/plays-april.tsv"),
        "user_000002\t2009-04-01T00:10:00Z\t\tCake\t\tJolene\n\
         user_000003\t2009-04-02T10:00:00Z\t\tZed\t\tWinner Song\n",
    )
    .expect("the April plays");
    let [_, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(
        silver.detail("silver.lastfm_listens refresh"),
        "months replaced: 2009-04"
    );
    // the March session it continues is rebuilt, with its month; the sessions before are kept
    assert_eq!(
        gold.detail("gold.lastfm_sessions refresh"),
        "months replaced: 2009-03 onwards",
        "{}",
        gold.stdout
    );
    let lake = dir.join("lake").display().to_string();
    let rows = lake_column(
        &lake,
        "SELECT user_id || ' ' || CAST(session_number AS VARCHAR) || ' ' \
         || CAST(started_at AS VARCHAR) || ' ' || CAST(play_count AS VARCHAR) \
         FROM gold.lastfm_sessions WHERE year = 2009 AND month >= 3 ORDER BY 1",
    );
    assert_eq!(
        rows,
        [
            "user_000002 2 2009-03-31T23:50:00Z 3",
            "user_000003 2 2009-04-02T10:00:00Z 1",
            "user_000005 2 2009-03-05T09:00:00Z 1",
        ],
        "the continued session has the April play; numbers go on from the kept sessions"
    );
    assert_eq!(
        gold.rows_written("gold.lastfm_sessions"),
        3,
        "only the rows of March onwards are written"
    );
    assert_gold_of_one_run(&dir, &landing, "later-sessions-once");
}

/// The gold tables of the lake under `dir` are those of one run over all of `landing`.
fn assert_gold_of_one_run(dir: &TempDir, landing: &Path, tag: &str) {
    let once = TempDir::new(tag);
    pipeline(once.path(), &strs(&local_args(&once, landing)), &[]);
    let gold_only = |lake: &TempDir| {
        let mut all = snapshot(&lake.join("lake").display().to_string(), &[], RUN_COLUMNS);
        all.retain(|table, _| table.starts_with("gold."));
        all
    };
    assert_same_lake(&gold_only(dir), &gold_only(&once), "delivered twice");
}

#[test]
fn the_original_tar_gz_lands_like_the_plain_files() {
    let dir = TempDir::new("tar");
    let src = dir.join("lastfm-dataset-1K");
    std::fs::create_dir_all(&src).expect("mkdir");
    for f in [PLAYS, PROFILES] {
        std::fs::copy(hand_landing().join("lastfm").join(f), src.join(f)).expect("copy");
    }
    std::fs::write(src.join("README.txt"), "the data set's readme\n").expect("readme");
    let landing = dir.join("landing");
    std::fs::create_dir_all(landing.join("lastfm")).expect("mkdir");
    let tar = Command::new("tar")
        .current_dir(dir.path())
        .args([
            "czf",
            "landing/lastfm/lastfm-dataset-1K.tar.gz",
            "lastfm-dataset-1K",
        ])
        .status()
        .expect("tar");
    assert!(tar.success());
    let args = local_args(&dir, &landing);
    let [bronze, _, _] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(
        (bronze.num("rows_in"), bronze.num("rows_quarantined")),
        (157, 5)
    );
    let objects = bronze.source_detail("lastfm", "objects").to_string();
    assert!(
        objects.contains("README.txt"),
        "skipped member listed: {objects}"
    );
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    assert_eq!(answer, hand_expected());
}

#[test]
fn pipeline_on_localstack_s3_gives_the_expected_answer() {
    let Some(s3) = S3::get() else { return };
    let bucket = s3.bucket("pipeline");
    let lastfm = hand_landing().join("lastfm");
    // plays gzipped, profiles plain, plus a file that is not data
    let plays = std::fs::read(lastfm.join(PLAYS)).expect("plays");
    bucket.put(&format!("landing/lastfm/{PLAYS}.gz"), gzip(&plays));
    bucket.put(
        &format!("landing/lastfm/{PROFILES}"),
        std::fs::read(lastfm.join(PROFILES)).expect("profiles"),
    );
    bucket.put("landing/lastfm/.DS_Store", vec![0, 1, 2]);
    let dir = TempDir::new("s3");
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let args = ["--lake", lake.as_str(), "--landing", landing.as_str()];
    let [bronze, silver, gold] = pipeline(dir.path(), &args, &env);
    for ran in [&bronze, &silver, &gold] {
        assert!(
            !ran.stderr.contains("ERROR"),
            "a successful run logs no error:\n{}",
            ran.stderr
        );
    }
    assert_eq!(
        (bronze.num("rows_in"), bronze.num("rows_quarantined")),
        (157, 5)
    );
    assert_eq!(
        bronze
            .source_detail("lastfm", "objects_ignored")
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(silver.rows_written("silver.lastfm_listens"), 137);
    assert!(gold.stderr.contains(&format!(
        "s3://{}/lake/gold/lastfm/top_songs.tsv",
        bucket.name
    )));
    let answer = String::from_utf8(bucket.get("lake/gold/lastfm/top_songs.tsv")).expect("utf-8");
    assert_eq!(answer, hand_expected());
    // the run records went into the lake too
    let log = bucket.get("lake/meta/runs/_delta_log/00000000000000000002.json");
    assert!(
        String::from_utf8_lossy(&log).contains("\"add\""),
        "three run records committed"
    );
}

#[test]
fn real_lastfm_head_reconciles_and_equals_duckdb() {
    let (Some(head), Some(profile)) = (
        shared_data(
            "lastfm1k/samples/myluco_userid-timestamp-artid-artname-traid-traname.head5000.tsv",
        ),
        shared_data("lastfm1k/userid-profile.tsv"),
    ) else {
        return;
    };
    let dir = TempDir::new("real");
    let landing = dir.join("landing");
    std::fs::create_dir_all(landing.join("lastfm")).expect("mkdir");
    std::fs::copy(&head, landing.join("lastfm").join(PLAYS)).expect("copy");
    std::fs::copy(&profile, landing.join("lastfm").join(PROFILES)).expect("copy");
    let args = local_args(&dir, &landing);
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(bronze.num("rows_in"), 5000 + 992);
    assert_eq!(
        bronze.num("rows_out") + bronze.num("rows_quarantined"),
        bronze.num("rows_in"),
        "lines in = landed + quarantined"
    );
    assert_eq!(silver.rows_written("silver.lastfm_users"), 992);
    // MANIFEST.md: 374 sessions of user_000001 and 1 of user_000002
    assert_eq!(gold.rows_written("gold.lastfm_sessions"), 375);
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    let recorded =
        std::fs::read_to_string(repo().join("tests/expected/lastfm_head5000_top_songs.tsv"))
            .expect("checked-in answer of peers.py duckdb");
    assert_eq!(answer, recorded);
    let Some(peers) = peers_py() else { return };
    for (peers, which) in [(peers, "peers.py"), (bench_peers_py(), "bench/peers.py")] {
        if let Some(duckdb) = peer_answer(&peers, "duckdb", &head) {
            assert_eq!(answer, duckdb, "equals {which} duckdb");
        }
    }
    let lake = dir.join("lake").display().to_string();
    let charts = lake_column(
        &lake,
        "SELECT CAST(chart_date AS VARCHAR) || '|' || country || '|' || CAST(rank AS VARCHAR) || '|' \
         || song || '|' || CAST(streams AS VARCHAR) FROM gold.lastfm_country_top50 \
         ORDER BY chart_date, country, rank",
    );
    assert!(charts.len() > 100, "{} chart rows", charts.len());
    assert_eq!(charts, duckdb_weekly_country_charts(&head, &profile));
}

/// The weekly country charts of the raw Last.fm files by DuckDB: the plays of each Monday to
/// Sunday (UTC), cleaned as `peers.py` cleans them, per country of the user's profile.
fn duckdb_weekly_country_charts(plays: &Path, profiles: &Path) -> Vec<String> {
    let Some(py) = python() else {
        return Vec::new();
    };
    let script = r#"
import sys, duckdb
plays, profiles = sys.argv[1], sys.argv[2]
q = f"""
WITH raw AS (
  SELECT * FROM read_csv('{plays}', delim='\t', header=false, quote='', escape='',
    columns={{'user_id':'VARCHAR','ts':'VARCHAR','a':'VARCHAR','artist':'VARCHAR','t':'VARCHAR','track':'VARCHAR'}},
    ignore_errors=true, strict_mode=true, null_padding=false, all_varchar=true)
), clean AS (
  SELECT DISTINCT user_id, strptime(ts, '%Y-%m-%dT%H:%M:%SZ') AS played, artist, track FROM raw
  WHERE trim(coalesce(user_id,'')) <> '' AND trim(coalesce(artist,'')) <> ''
    AND trim(coalesce(track,'')) <> '' AND try_strptime(ts, '%Y-%m-%dT%H:%M:%SZ') IS NOT NULL
), users AS (
  SELECT column0 AS user_id, column3 AS country FROM read_csv('{profiles}', delim='\t', header=true,
    quote='', all_varchar=true, columns={{'column0':'VARCHAR','column1':'VARCHAR','column2':'VARCHAR','column3':'VARCHAR','column4':'VARCHAR'}})
  WHERE trim(coalesce(column3,'')) <> ''
), counted AS (
  SELECT CAST(date_trunc('week', played) AS DATE) + 6 AS week, u.country, artist || ' — ' || track AS song, count(*) AS n
  FROM clean JOIN users u USING (user_id) GROUP BY ALL
)
SELECT week, country, rank, song, n FROM (
  SELECT *, row_number() OVER (PARTITION BY week, country ORDER BY n DESC, song ASC) AS rank FROM counted
) WHERE rank <= 50 ORDER BY week, country, rank
"""
for w, c, r, s, n in duckdb.connect().execute(q).fetchall():
    print(f"{w}|{c}|{r}|{s}|{n}")
"#;
    let out = python_output(
        &py,
        &[
            "-c",
            script,
            &plays.display().to_string(),
            &profiles.display().to_string(),
        ],
        &[],
    );
    String::from_utf8_lossy(&out)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn generated_data_with_bad_and_duplicate_lines_equals_duckdb_and_polars() {
    let dir = TempDir::new("gen");
    let landing = dir.join("landing");
    lake_gen(
        "lastfm",
        &landing.join("lastfm"),
        &[
            "--rows",
            "30000",
            "--users",
            "25",
            "--seed",
            "11",
            "--bad-rate",
            "0.01",
            "--dup-rate",
            "0.01",
        ],
    );
    let args = local_args(&dir, &landing);
    let [bronze, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    assert!(bronze.num("rows_quarantined") > 0 && silver.num("rows_quarantined") > 0);
    assert!(silver.reconciled("lastfm", "silver.lastfm_listens")["duplicates"].as_u64() > Some(0));
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    assert_eq!(answer.lines().count(), 11);
    let plays = landing.join("lastfm").join(PLAYS);
    // the shared reference peers, and the project's own that `make bench` times
    let Some(peers) = peers_py() else { return };
    for (peers, which) in [(peers, "peers.py"), (bench_peers_py(), "bench/peers.py")] {
        for engine in ["duckdb", "polars"] {
            if let Some(peer) = peer_answer(&peers, engine, &plays) {
                assert_eq!(answer, peer, "equals {which} {engine}");
            }
        }
    }
}

#[test]
fn the_like_for_like_duckdb_lake_of_make_bench_has_the_pipelines_tables_and_answer() {
    let dir = TempDir::new("lake-peer");
    let landing = dir.join("landing");
    let generated = ["--rows", "30000", "--users", "25", "--seed", "12"];
    lake_gen("lastfm", &landing.join("lastfm"), &generated);
    let args = local_args(&dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    let Some(py) = python() else { return };
    let (peer, out) = (repo().join("bench/medallion_duckdb.py"), dir.join("peer"));
    let said = python_output(
        &py,
        &[
            peer.to_str().unwrap_or_default(),
            landing.to_str().unwrap_or_default(),
            out.to_str().unwrap_or_default(),
        ],
        &[],
    );
    let said: serde_json::Value = String::from_utf8_lossy(&said)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("medallion_duckdb.py prints its rows as JSON");
    let tables = said["rows"].as_object().expect("rows by table");
    assert!(tables.len() >= 8, "{said}");
    let lake = dir.join("lake").display().to_string();
    for (table, rows) in tables {
        let ours = lake_column(&lake, &format!("SELECT count(*) FROM {table}"));
        assert_eq!(ours, [rows.to_string()], "rows of {table}");
    }
    let answer = |p: std::path::PathBuf| std::fs::read_to_string(p).expect("an answer file");
    assert_eq!(
        answer(dir.join("lake/gold/lastfm/top_songs.tsv")),
        answer(out.join("gold/top_songs.tsv"))
    );
}
