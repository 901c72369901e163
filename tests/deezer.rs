//! Deezer's daily logs through the three jobs: the hand fixture's hand-derived charts, every
//! corruption kind quarantined with its reason, the charts equal to the reference
//! (`../shared/bench/deezer.py duckdb`) on real and generated logs, a day's work per day, late
//! and changed files, and S3.

use std::path::{Path, PathBuf};

use lake_tests::*;

/// The hand fixture's landing folder (`deezer/`) and its hand-derived charts.
fn hand() -> PathBuf {
    fixture("deezer-hand")
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(hand().join("expected").join(name)).expect("expected chart")
}

/// The chart file `<kind>_top50_<date>.txt` of a local lake.
fn chart(lake: &Path, kind: &str, date: &str) -> String {
    let path = lake.join(format!("gold/deezer/charts/{kind}_top50_{date}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The dates gold charted in a run, with the days of each window that had no log.
fn charted(gold: &Ran) -> Vec<(String, Vec<String>)> {
    gold.detail("deezer_charts")["dates"]
        .as_array()
        .map(|dates| {
            dates
                .iter()
                .map(|d| {
                    let missing = d["days_missing"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    (d["date"].as_str().unwrap_or_default().to_string(), missing)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that every chart date's files in `lake` equal what `deezer.py duckdb` writes from
/// the logs in `logs`.
fn assert_charts_equal_the_reference(lake: &Path, logs: &Path, dates: &[String]) {
    for date in dates {
        let ymd = date.replace('-', "");
        let Some((country, user)) = deezer_py_charts(logs, &ymd) else {
            return;
        };
        assert_eq!(
            chart(lake, "country", &ymd),
            country,
            "country chart of {date}"
        );
        assert_eq!(chart(lake, "user", &ymd), user, "user chart of {date}");
    }
}

/// Copies the log files named `names` from `from` into `<landing>/deezer/`.
fn deliver(from: &Path, landing: &Path, names: &[String]) {
    std::fs::create_dir_all(landing.join("deezer")).expect("mkdir");
    for name in names {
        std::fs::copy(from.join(name), landing.join("deezer").join(name)).expect("copy log");
    }
}

fn log_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("listen-"))
        .collect();
    names.sort();
    names
}

#[test]
fn hand_fixture_gives_the_hand_derived_charts_and_every_line_is_accounted_for() {
    let dir = TempDir::new("deezer-hand");
    let args = local_args(&dir, &hand());
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    // 83 lines: 5 cannot be landed; 8 of the 78 landed break a rule
    assert_eq!(
        (
            bronze.num("rows_in"),
            bronze.num("rows_out"),
            bronze.num("rows_quarantined")
        ),
        (83, 78, 5)
    );
    let skipped = bronze
        .source_detail("deezer", "objects_ignored")
        .to_string();
    assert!(skipped.contains("listen-2021120.log"), "{skipped}");
    assert_eq!(
        silver.reconciled("deezer", "silver.deezer_streams"),
        serde_json::json!({"rows_in": 78, "rows_out": 70, "rejected": 8, "unaccounted": 0})
    );
    let lake = dir.join("lake");
    for date in ["20211207", "20211208"] {
        for kind in ["country", "user"] {
            let name = format!("{kind}_top50_{date}.txt");
            assert_eq!(chart(&lake, kind, date), expected(&name), "{name}");
        }
    }
    // every day with a log is charted, and the run record says which days its window lacked
    let dates = charted(&gold);
    let days: Vec<&str> = dates.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        days,
        [
            "2021-12-01",
            "2021-12-02",
            "2021-12-05",
            "2021-12-06",
            "2021-12-07",
            "2021-12-08"
        ]
    );
    assert_eq!(dates[5].1, ["2021-12-03", "2021-12-04"]);
    // the tables hold what the files say
    let root = lake.display().to_string();
    let lu = lake_column(
        &root,
        "SELECT max(rank) || ' ' || max(sng_id) FROM gold.deezer_country_top50 \
         WHERE chart_date = DATE '2021-12-08' AND country = 'LU'",
    );
    assert_eq!(lu, ["50 1050"], "the 51st song of the tie is out");
    let dates: Vec<String> = dates.into_iter().map(|(d, _)| d).collect();
    assert_charts_equal_the_reference(&lake, &hand().join("deezer"), &dates);
}

#[test]
fn every_corruption_kind_is_quarantined_with_its_reason() {
    let dir = TempDir::new("deezer-reasons");
    let args = local_args(&dir, &hand());
    pipeline(dir.path(), &strs(&args), &[]);
    let reasons = lake_column(
        &dir.join("lake").display().to_string(),
        "SELECT raw_line || ' => ' || reason FROM bronze.deezer_quarantine UNION ALL \
         SELECT raw_line || ' => ' || reason FROM silver.deezer_quarantine ORDER BY 1",
    );
    let text = reasons.join("\n");
    for expected in [
        "123456|FR => expected 3 |-separated fields, found 2",
        "1|2|FR3|4|DE => expected 3 |-separated fields, found 5",
        " => empty line (expected 3 |-separated fields)",
        "1,2,FR => expected 3 |-separated fields, found 1",
        "5|2|FR| => expected 3 |-separated fields, found 4",
        "5|2|GBGBGB => country 'GBGBGB' is not an ISO 3166-1 alpha-2 code",
        "-5|2|FR => sng_id '-5' is not decimal digits",
        "5| |FR => user_id ' ' is not decimal digits",
        "5|null|FR => user_id 'null' is not decimal digits",
        "5||FR => user_id '' is not decimal digits",
        "9223372036854775808|1|FR => sng_id '9223372036854775808' does not fit a signed 64-bit integer",
        "5|2|fr => country 'fr' is not an ISO 3166-1 alpha-2 code",
        "5|2|XK => country 'XK' is not an ISO 3166-1 alpha-2 code",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert_eq!(reasons.len(), 13, "{text}");
}

#[test]
fn a_week_delivered_day_by_day_equals_the_week_at_once_and_a_day_reads_a_day() {
    let dir = TempDir::new("deezer-days");
    let logs = dir.join("logs");
    lake_gen(
        "deezer",
        &logs,
        &[
            "--days",
            "7",
            "--streams",
            "3000",
            "--users",
            "300",
            "--songs",
            "800",
            "--bad-rate",
            "0.01",
        ],
    );
    let names = log_names(&logs);
    let (at_once, by_day) = (dir.join("at-once"), dir.join("by-day"));
    deliver(&logs, &at_once, &names);
    let args = |landing: &Path, lake: &str| {
        vec![
            "--lake".to_string(),
            dir.join(lake).display().to_string(),
            "--landing".into(),
            landing.display().to_string(),
        ]
    };
    pipeline(dir.path(), &strs(&args(&at_once, "lake-a")), &[]);
    let mut last = None;
    for name in &names {
        deliver(&logs, &by_day, std::slice::from_ref(name));
        last = Some(pipeline(dir.path(), &strs(&args(&by_day, "lake-b")), &[]));
    }
    let Some([bronze, silver, gold]) = last else {
        panic!("no day delivered");
    };
    // the last day: one file landed, one day of bronze read by silver, one date charted
    let landed = bronze.rows_written("bronze.deezer_listens");
    assert_eq!(bronze.num("rows_in"), 3000);
    assert_eq!(
        silver.num("rows_in"),
        landed,
        "silver reads the new day only"
    );
    assert_eq!(
        silver.detail("silver.deezer_streams refresh"),
        "days replaced: 2021-12-07"
    );
    assert_eq!(charted(&gold).len(), 1);
    let differs = [
        RUN_COLUMNS,
        &["batch", "charted_at", "window_batch", "e_tag"],
    ]
    .concat();
    let lake_a = snapshot(&dir.join("lake-a").display().to_string(), &[], &differs);
    let lake_b = snapshot(&dir.join("lake-b").display().to_string(), &[], &differs);
    let deezer = |lake: std::collections::BTreeMap<String, Vec<String>>, landing: &Path| {
        let landing = landing.display().to_string();
        lake.into_iter()
            .filter(|(t, _)| t.contains("deezer") || t == "meta.landed_objects")
            .map(|(t, rows)| {
                let rows = rows
                    .iter()
                    .map(|r| r.replace(&landing, "<landing>"))
                    .collect();
                (t, rows)
            })
            .collect()
    };
    assert_same_lake(
        &deezer(lake_b, &by_day),
        &deezer(lake_a, &at_once),
        "a week day by day against the week at once",
    );
    for name in &names {
        let date = &name["listen-".len().."listen-".len() + 8];
        for kind in ["country", "user"] {
            assert_eq!(
                chart(&dir.join("lake-b"), kind, date),
                chart(&dir.join("lake-a"), kind, date),
                "{kind} {date}"
            );
        }
    }
}

#[test]
fn a_late_file_redoes_the_days_whose_window_holds_it_and_a_changed_log_replaces_its_day() {
    let dir = TempDir::new("deezer-late");
    let logs = dir.join("logs");
    lake_gen(
        "deezer",
        &logs,
        &[
            "--days",
            "10",
            "--streams",
            "2000",
            "--users",
            "200",
            "--songs",
            "500",
        ],
    );
    let names = log_names(&logs);
    let landing = dir.join("landing");
    let late = "listen-20211203.log".to_string();
    let on_time: Vec<String> = names.iter().filter(|n| **n != late).cloned().collect();
    deliver(&logs, &landing, &on_time);
    let args = local_args(&dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    deliver(&logs, &landing, std::slice::from_ref(&late));
    let [_, _, gold] = pipeline(dir.path(), &strs(&args), &[]);
    let days: Vec<String> = charted(&gold).into_iter().map(|(d, _)| d).collect();
    // 2021-12-03 is in the windows of 2021-12-03 to 2021-12-09
    let want: Vec<String> = (3..=9).map(|d| format!("2021-12-{d:02}")).collect();
    assert_eq!(days, want);
    let lake = dir.join("lake");
    assert_charts_equal_the_reference(&lake, &landing.join("deezer"), &want);

    // the log of 2021-12-05 is delivered again, changed: it replaces the old one
    let other = dir.join("other");
    lake_gen(
        "deezer",
        &other,
        &[
            "--start",
            "2021-12-05",
            "--days",
            "1",
            "--streams",
            "700",
            "--seed",
            "9",
        ],
    );
    std::fs::copy(
        other.join("listen-20211205.log"),
        landing.join("deezer/listen-20211205.log"),
    )
    .expect("copy");
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert!(
        bronze
            .source_detail("deezer", "objects_changed")
            .to_string()
            .contains("listen-20211205.log")
    );
    assert_eq!(
        silver.detail("silver.deezer_streams refresh"),
        "days replaced: 2021-12-05"
    );
    let days: Vec<String> = charted(&gold).into_iter().map(|(d, _)| d).collect();
    let want: Vec<String> = (5..=10).map(|d| format!("2021-12-{d:02}")).collect();
    assert_eq!(days, want);
    assert_charts_equal_the_reference(&lake, &landing.join("deezer"), &want);
}

#[test]
fn generated_logs_give_the_charts_of_the_reference_on_every_day() {
    let dir = TempDir::new("deezer-gen");
    let landing = dir.join("landing");
    lake_gen(
        "deezer",
        &landing.join("deezer"),
        &[
            "--days",
            "9",
            "--streams",
            "4000",
            "--users",
            "400",
            "--songs",
            "900",
            "--bad-rate",
            "0.02",
            "--skip-day",
            "2021-12-04",
            "--seed",
            "3",
        ],
    );
    let args = local_args(&dir, &landing);
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    assert!(bronze.num("rows_quarantined") > 0 && silver.num("rows_quarantined") > 0);
    let dates: Vec<String> = charted(&gold).into_iter().map(|(d, _)| d).collect();
    assert_eq!(dates.len(), 8, "every day with a log: {dates:?}");
    assert_charts_equal_the_reference(&dir.join("lake"), &landing.join("deezer"), &dates);
    // the project's own peers, which `make bench` times, give the same files
    let Some(py) = python() else { return };
    let peers = repo().join("bench/deezer_peers.py").display().to_string();
    let logs = landing.join("deezer").display().to_string();
    for engine in ["duckdb", "polars"] {
        let out = dir.join(engine).display().to_string();
        let args = [
            peers.as_str(),
            engine,
            &logs,
            "--date",
            "20211209",
            "--out",
            &out,
        ];
        python_output(&py, &args, &[]);
        for kind in ["country", "user"] {
            let name = format!("{kind}_top50_20211209.txt");
            let theirs = std::fs::read_to_string(dir.join(engine).join(&name)).expect("peer chart");
            assert_eq!(
                chart(&dir.join("lake"), kind, "20211209"),
                theirs,
                "{engine} {name}"
            );
        }
    }
}

#[test]
fn the_real_sample_and_fixtures_give_the_charts_of_the_reference() {
    let (Some(sample), Some(fixtures)) = (
        shared_data("deezer/official_sample/sample_listen-2021-12-01.txt"),
        shared_data("deezer/third_party_fixtures"),
    ) else {
        return;
    };
    // each real file under a log name of its own day
    let files = [
        (sample, "listen-20211201.log"),
        (
            fixtures.join("ularpose27__sample_listen-2021-12-01_copy.txt"),
            "listen-20211202.log",
        ),
        (
            fixtures.join("AzemaBaptiste_topper__sample_listen-20200211.log"),
            "listen-20211203.log",
        ),
        (
            fixtures.join("AzemaBaptiste_topper__tests_integration_listen-YYYYMMDD.log"),
            "listen-20211204.log",
        ),
    ];
    let dir = TempDir::new("deezer-real");
    let landing = dir.join("landing");
    std::fs::create_dir_all(landing.join("deezer")).expect("mkdir");
    for (from, name) in &files {
        std::fs::copy(from, landing.join("deezer").join(name)).expect("copy");
    }
    let args = local_args(&dir, &landing);
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    // MANIFEST.md: 100 + 155 + 103 (+1 empty last line) + 10 lines
    assert_eq!(
        bronze.num("rows_in"),
        bronze.num("rows_out") + bronze.num("rows_quarantined")
    );
    let streams = silver.reconciled("deezer", "silver.deezer_streams");
    assert_eq!(streams["unaccounted"], 0, "{streams}");
    let lake = dir.join("lake");
    let root = lake.display().to_string();
    // the official sample is written with " | ": every line of it is a stream
    let first_day = lake_column(
        &root,
        "SELECT count(*) FROM silver.deezer_streams WHERE listen_date = DATE '2021-12-01'",
    );
    assert_eq!(first_day, ["100"]);
    // the topper fixture's invalid countries (ML, Mali, is a real one)
    let rejected = lake_column(
        &root,
        "SELECT reason FROM silver.deezer_quarantine WHERE source_object LIKE '%20211204%' ORDER BY 1",
    );
    for code in ["QV", "SP", "UR", "VJ"] {
        let reason = format!("country '{code}' is not an ISO 3166-1 alpha-2 code");
        assert!(rejected.contains(&reason), "{rejected:?}");
    }
    let dates: Vec<String> = charted(&gold).into_iter().map(|(d, _)| d).collect();
    assert_eq!(dates.len(), 4);
    assert_charts_equal_the_reference(&lake, &landing.join("deezer"), &dates);
}

#[test]
fn deezer_on_localstack_s3_gives_the_hand_derived_charts() {
    let Some(s3) = S3::get() else { return };
    let bucket = s3.bucket("deezer");
    bucket.put_tree("landing/deezer", &hand().join("deezer"));
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let dir = TempDir::new("deezer-s3");
    let [bronze, _, gold] = pipeline(dir.path(), &["--lake", &lake, "--landing", &landing], &env);
    assert_eq!(bronze.num("rows_in"), 83);
    assert_eq!(charted(&gold).len(), 6);
    for date in ["20211207", "20211208"] {
        for kind in ["country", "user"] {
            let name = format!("{kind}_top50_{date}.txt");
            let got = bucket.get(&format!("lake/gold/deezer/charts/{name}"));
            assert_eq!(String::from_utf8_lossy(&got), expected(&name), "{name}");
        }
    }
}

#[test]
fn gold_crashed_between_its_charts_then_rerun_writes_every_chart() {
    let dir = TempDir::new("deezer-crash");
    let args = local_args(&dir, &hand());
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    run("silver", dir.path(), &strs(&args), &[]).ok();
    let fault = [("LAKE_TEST_FAULT", "committed:gold.deezer_country_top50")];
    let crashed = run("gold", dir.path(), &strs(&args), &fault);
    assert!(
        crashed.stderr.contains("aborting here"),
        "{}",
        crashed.stderr
    );
    let gold = run("gold", dir.path(), &strs(&args), &[]).ok();
    assert_eq!(charted(&gold).len(), 6, "nothing was noted as charted");
    let lake = dir.join("lake");
    for date in ["20211207", "20211208"] {
        for kind in ["country", "user"] {
            let name = format!("{kind}_top50_{date}.txt");
            assert_eq!(chart(&lake, kind, date), expected(&name), "{name}");
        }
    }
}
