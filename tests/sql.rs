//! The `lake` tool: SQL over every table by its schema-qualified name, output formats, time
//! travel, the table listing, clear errors, the memory limit and the interactive shell.

use std::path::Path;

use lake_tests::*;

/// A lake built from the hand fixture; returns the `--lake` argument.
fn hand_lake(dir: &TempDir) -> String {
    let args = local_args(dir, &hand_landing());
    pipeline(dir.path(), &strs(&args), &[]);
    dir.join("lake").display().to_string()
}

/// Runs `lake --lake <lake> <args>`.
fn lake(dir: &Path, lake: &str, args: &[&str], env: &[(&str, &str)]) -> Ran {
    run("lake", dir, &[&["--lake", lake][..], args].concat(), env)
}

const TOP_SONGS: &str =
    "SELECT track_name, artist_name, play_count FROM gold.lastfm_top_songs ORDER BY rank";

#[test]
fn every_layer_is_queried_by_its_qualified_name_in_every_format() {
    let dir = TempDir::new("sql");
    let root = hand_lake(&dir);
    let tsv = lake(
        dir.path(),
        &root,
        &["sql", TOP_SONGS, "--format", "tsv"],
        &[],
    )
    .ok();
    assert_eq!(
        tsv.stdout,
        hand_expected(),
        "TSV equals the delivered answer"
    );
    let csv = lake(
        dir.path(),
        &root,
        &["sql", TOP_SONGS, "--format", "csv"],
        &[],
    )
    .ok();
    assert!(
        csv.stdout
            .starts_with("track_name,artist_name,play_count\n")
    );
    let table = lake(
        dir.path(),
        &root,
        &["sql", TOP_SONGS, "--format", "table"],
        &[],
    )
    .ok();
    assert!(table.stdout.starts_with("+---") && table.stdout.contains("| track_name"));
    let counts = "SELECT (SELECT count(*) FROM bronze.lastfm_plays) AS bronze, \
                  (SELECT count(*) FROM silver.lastfm_listens) AS silver, \
                  (SELECT count(*) FROM silver.lastfm_quarantine) AS quarantined, \
                  (SELECT count(*) FROM gold.lastfm_sessions) AS sessions, \
                  (SELECT count(*) FROM meta.runs) AS runs";
    let json = lake(dir.path(), &root, &["sql", counts, "--format", "json"], &[]).ok();
    assert_eq!(
        json.stdout.trim(),
        r#"{"bronze":146,"silver":137,"quarantined":10,"sessions":82,"runs":3}"#
    );

    // statements from a file, and from stdin
    let file = dir.join("q.sql");
    std::fs::write(
        &file,
        "SELECT 1 AS one;\nSELECT count(*) AS users FROM silver.lastfm_users;\n",
    )
    .expect("write");
    let from_file = lake(
        dir.path(),
        &root,
        &["sql", "-f", &file.display().to_string()],
        &[],
    )
    .ok();
    assert_eq!(from_file.stdout, "one\n1\nusers\n4\n");
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo 'SELECT count(*) AS n FROM gold.lastfm_top_sessions;' | {} --lake {root} sql",
            bin("lake").display()
        ))
        .output()
        .expect("sh");
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "n\n50\n");
}

#[test]
fn a_table_reads_as_it_was_at_a_version_or_a_time() {
    let dir = TempDir::new("travel");
    let landing = hand_landing_copy(&dir);
    let args = local_args(&dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    // a time after the first delivery's commits and before the second's
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(
        landing.join("lastfm/more.tsv"),
        "user_000001\t2009-03-01T10:00:00Z\t\tNew Artist\t\tNew Song\n",
    )
    .expect("write");
    pipeline(dir.path(), &strs(&args), &[]);
    let after = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let root = dir.join("lake").display().to_string();
    let count = |table: &str| {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        lake(dir.path(), &root, &["sql", &sql], &[]).ok().stdout
    };
    assert_eq!(count("silver.lastfm_listens"), "n\n138\n");
    assert_eq!(
        count("silver.lastfm_listens@v1"),
        "n\n137\n",
        "the first version"
    );
    assert_eq!(count("silver.lastfm_listens@v0"), "n\n0\n", "created empty");
    assert_eq!(
        count(&format!("silver.lastfm_listens@{between}")),
        "n\n137\n",
        "as it was between the deliveries"
    );
    assert_eq!(count(&format!("silver.lastfm_listens@{after}")), "n\n138\n");
    assert_eq!(
        count(&format!("silver.\"lastfm_listens@{between}\"")),
        "n\n137\n",
        "a quoted name travels too"
    );
    // a literal that looks like a table at a time is left as written
    let literal = format!("SELECT 'silver.lastfm_listens@{between}' AS s");
    assert_eq!(
        lake(dir.path(), &root, &["sql", &literal], &[]).ok().stdout,
        format!("s\nsilver.lastfm_listens@{between}\n")
    );
    let missing = lake(
        dir.path(),
        &root,
        &["sql", "SELECT count(*) FROM silver.lastfm_listens@v99"],
        &[],
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("silver.lastfm_listens as of version 99"),
        "{}",
        missing.stderr
    );
    let nonsense = lake(
        dir.path(),
        &root,
        &[
            "sql",
            "SELECT count(*) FROM silver.lastfm_listens@yesterday",
        ],
        &[],
    );
    assert!(
        nonsense.stderr.contains("say a version as @v3"),
        "{}",
        nonsense.stderr
    );
}

#[test]
fn a_job_s_sql_file_runs_in_the_tool_as_the_job_runs_it() {
    let dir = TempDir::new("same-session");
    let root = hand_lake(&dir);
    let file = repo().join("jobs/silver/sql/lastfm_plays_checked.sql");
    let checked = lake(
        dir.path(),
        &root,
        &["sql", "-f", &file.display().to_string(), "--format", "json"],
        &[],
    )
    .ok();
    let rows: Vec<serde_json::Value> = checked
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(rows.len(), 146, "one row per bronze play");
    let mut rejected: Vec<String> = rows
        .iter()
        .filter_map(|r| r["reject_reason"].as_str().map(String::from))
        .collect();
    rejected.sort();
    // the reasons silver wrote into its quarantine, computed again by the tool
    let quarantined = lake_column(
        &root,
        "SELECT reason FROM silver.lastfm_quarantine \
         WHERE table_name = 'silver.lastfm_listens' ORDER BY reason",
    );
    assert_eq!(rejected, quarantined);
    assert_eq!(rejected.len(), 8);
}

#[test]
fn tables_and_describe_say_where_each_table_is_and_what_it_holds() {
    let dir = TempDir::new("tables");
    let root = hand_lake(&dir);
    let tables = lake(dir.path(), &root, &["tables", "--format", "json"], &[]).ok();
    let listens = tables
        .stdout
        .lines()
        .find(|l| l.contains(r#""table":"silver.lastfm_listens""#))
        .unwrap_or_default();
    assert!(
        listens.contains(r#""version":1"#)
            && listens.contains(r#""rows":137"#)
            && listens.contains("silver/lastfm/listens/")
            && listens.contains(r#""last_run":""#),
        "{}",
        tables.stdout
    );
    assert!(
        tables
            .stdout
            .contains(r#""table":"gold.sparkify_top_songs""#),
        "every table listed"
    );
    let described = lake(
        dir.path(),
        &root,
        &["describe", "silver.lastfm_listens"],
        &[],
    )
    .ok();
    assert!(
        described.stdout.contains("partitioned by: year, month")
            && described.stdout.contains("played_at\ttimestamp"),
        "{}",
        described.stdout
    );
}

#[test]
fn errors_name_what_is_wrong_and_the_shell_goes_on_after_them() {
    let dir = TempDir::new("errors");
    let root = hand_lake(&dir);
    let unknown = lake(
        dir.path(),
        &root,
        &["sql", "SELECT * FROM silver.listens"],
        &[],
    );
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains("no table silver.listens: did you mean silver.lastfm_listens?"),
        "{}",
        unknown.stderr
    );
    let syntax = lake(dir.path(), &root, &["sql", "SELEC 1"], &[]);
    assert!(
        syntax.stderr.contains("Line: 1, Column: 1"),
        "{}",
        syntax.stderr
    );
    let described = lake(
        dir.path(),
        &root,
        &["describe", "silver.lastfm_listen"],
        &[],
    );
    assert!(
        described
            .stderr
            .contains("did you mean silver.lastfm_listens"),
        "{}",
        described.stderr
    );

    if !has_script() {
        return;
    }
    // typed line by line: a statement, a mistake, a statement over two lines, then \q
    let typed = "sleep 1; printf 'SELECT 1 AS a;\\n'; sleep 1; \
                 printf 'SELECT * FROM silver.listens;\\n'; sleep 1; \
                 printf 'SELECT count(*) AS users\\n'; sleep 0.5; \
                 printf 'FROM silver.lastfm_users;\\n'; sleep 1; printf '\\\\q\\n'; sleep 0.5";
    let shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "({typed}) | HOME={home} script -qec '{lake} --lake {root} sql' /dev/null",
            home = dir.path().display(),
            lake = bin("lake").display()
        ))
        .output()
        .expect("sh");
    let screen = String::from_utf8_lossy(&shell.stdout).replace('\r', "");
    assert!(shell.status.success(), "{screen}");
    assert!(screen.contains("| 1 |"), "{screen}");
    assert!(
        screen.contains("did you mean silver.lastfm_listens"),
        "{screen}"
    );
    assert!(
        screen.contains("| 4     |"),
        "the statement after the error ran: {screen}"
    );
    let history = std::fs::read_to_string(dir.join(".lake_history")).unwrap_or_default();
    assert!(
        history.contains("FROM silver.lastfm_users;"),
        "history kept: {history}"
    );
}

#[test]
fn a_memory_limit_bounds_queries_and_names_itself_when_a_query_cannot_fit() {
    let dir = TempDir::new("memory");
    let landing = dir.join("landing");
    lake_gen(
        "lastfm",
        &landing.join("lastfm"),
        &["--rows", "60000", "--users", "10", "--seed", "3"],
    );
    let args = local_args(&dir, &landing);
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    run("silver", dir.path(), &strs(&args), &[]).ok();
    let root = dir.join("lake").display().to_string();
    let sorted = "SELECT user_id, played_at, track_name FROM silver.lastfm_listens \
                  ORDER BY track_name, played_at, user_id";
    let free = lake(dir.path(), &root, &["sql", sorted], &[]).ok();
    let limited = lake(
        dir.path(),
        &root,
        &["--memory-limit", "32MiB", "sql", sorted],
        &[],
    )
    .ok();
    assert_eq!(limited.stdout, free.stdout, "the same rows under the limit");
    let unspillable = lake(
        dir.path(),
        &root,
        &[
            "--memory-limit",
            "64KiB",
            "sql",
            "SELECT array_agg(track_name) FROM silver.lastfm_listens",
        ],
        &[],
    );
    assert_eq!(unspillable.code, 1);
    assert!(
        unspillable.stderr.contains("raise the limit"),
        "{}",
        unspillable.stderr
    );
}

#[test]
fn query_results_are_written_to_a_local_file_or_to_s3() {
    let dir = TempDir::new("output");
    let root = hand_lake(&dir);
    let local = dir.join("top.parquet").display().to_string();
    lake(
        dir.path(),
        &root,
        &["sql", TOP_SONGS, "--output", &local],
        &[],
    )
    .ok();
    let back = lake(
        dir.path(),
        &root,
        &["sql", &format!("SELECT count(*) AS n FROM '{local}'")],
        &[],
    )
    .ok();
    assert_eq!(back.stdout, "n\n10\n");
    let Some(s3) = S3::get() else { return };
    let bucket = s3.bucket("output");
    let env = s3.env();
    let env = pairs(&env);
    let remote = bucket.url("exports/top.csv");
    lake(
        dir.path(),
        &root,
        &["sql", TOP_SONGS, "--output", &remote],
        &env,
    )
    .ok();
    let csv = String::from_utf8(bucket.get("exports/top.csv")).expect("utf-8");
    assert!(
        csv.starts_with("track_name,artist_name,play_count\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 11);
}
