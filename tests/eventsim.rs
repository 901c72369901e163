//! eventsim's four streams through the three jobs: the hand fixture's hand-derived tables, every
//! broken line quarantined with its reason, an event delivered twice counted once (also across
//! runs), generated streams equal to what the generator reports, and S3.

use std::path::{Path, PathBuf};

use lake_tests::*;

/// The hand fixture's landing folder (`eventsim/<stream>/…`).
fn hand() -> PathBuf {
    fixture("eventsim-hand")
}

/// `gold.eventsim_activity_daily`, a line per day in column order.
fn activity(lake: &str) -> Vec<String> {
    lake_column(
        lake,
        "SELECT CAST(day AS VARCHAR) || ' ' || CAST(streams AS VARCHAR) || ' ' || CAST(active_users AS VARCHAR) \
         || ' ' || CAST(logins AS VARCHAR) || ' ' || CAST(failed_logins AS VARCHAR) || ' ' || CAST(upgrades AS VARCHAR) \
         || ' ' || CAST(downgrades AS VARCHAR) || ' ' || CAST(cancellations AS VARCHAR) || ' ' \
         || CAST(guests_sessions AS VARCHAR) FROM gold.eventsim_activity_daily ORDER BY day",
    )
}

/// The hand-derived activity (tests/fixtures/eventsim-hand/README.md).
const HAND_ACTIVITY: [&str; 2] = ["2022-04-15 4 2 1 1 1 0 0 1", "2022-04-16 1 1 0 0 0 0 1 0"];

const STREAM_TABLES: [&str; 4] = [
    "silver.eventsim_listen_events",
    "silver.eventsim_page_view_events",
    "silver.eventsim_auth_events",
    "silver.eventsim_status_change_events",
];

#[test]
fn hand_fixture_gives_the_hand_derived_tables_and_every_line_is_accounted_for() {
    let dir = TempDir::new("eventsim-hand");
    let args = local_args(&dir, &hand());
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    // 20 lines: one cut off and one not UTF-8 cannot be landed
    assert_eq!(
        (
            bronze.num("rows_in"),
            bronze.num("rows_out"),
            bronze.num("rows_quarantined")
        ),
        (20, 18, 2)
    );
    let written: Vec<u64> = STREAM_TABLES
        .iter()
        .map(|t| silver.rows_written(t))
        .collect();
    assert_eq!(written, [5, 4, 2, 2]);
    assert_eq!(silver.rows_written("silver.eventsim_quarantine"), 4);
    assert_eq!(silver.num("rows_in"), 18, "each landed line read once");
    assert_eq!(
        silver.reconciled("eventsim", "silver.eventsim_listen_events"),
        serde_json::json!({"rows_in": 8, "rows_out": 5, "rejected": 2, "duplicates": 1})
    );
    let lake = dir.join("lake").display().to_string();
    assert_eq!(activity(&lake), HAND_ACTIVITY);
    // the listen at 23:59:59.999 counts on its day, repaired and unquoted
    let last = lake_column(
        &lake,
        "SELECT CAST(event_time AS VARCHAR) || '|' || artist || '|' || song || '|' || user_agent \
         FROM silver.eventsim_listen_events WHERE session_id = 3 AND item_in_session = 0",
    );
    assert_eq!(
        last,
        [
            "2022-04-15T23:59:59.999Z|Sigur Rós|Hoppípolla|Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) \
          AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36"
        ]
    );
    // `length` for `duration`, `userId` as a string
    let typed = lake_column(
        &lake,
        "SELECT CAST(user_id AS VARCHAR) || ' ' || CAST(duration AS VARCHAR) FROM silver.eventsim_listen_events \
         WHERE song IN ('Halo', 'Uprising') ORDER BY event_time",
    );
    assert_eq!(typed, ["101 261.0", "102 305.0"]);
    // the level periods: 101 free until the upgrade, then paid; 102 paid
    let periods = lake_column(
        &lake,
        "SELECT CAST(user_id AS VARCHAR) || ' ' || level || ' ' || CAST(valid_from AS VARCHAR) || ' ' \
         || coalesce(CAST(valid_to AS VARCHAR), '-') || ' ' || CAST(is_current AS VARCHAR) \
         FROM gold.eventsim_dim_users ORDER BY user_id, valid_from",
    );
    assert_eq!(
        periods,
        [
            "101 free 2022-04-15T10:00:00Z 2022-04-15T12:00:00Z false",
            "101 paid 2022-04-15T12:00:00Z - true",
            "102 paid 2022-04-15T23:59:59.999Z - true",
        ]
    );
    assert!(
        gold.rows_written("gold.eventsim_fact_streams") == 5,
        "one fact row per listen"
    );
    let songs = lake_column(
        &lake,
        "SELECT CAST(count(*) AS VARCHAR) FROM gold.eventsim_fact_streams f \
         JOIN gold.eventsim_dim_songs s ON s.song_id = f.song_id \
         JOIN gold.eventsim_dim_artists a ON a.artist_id = f.artist_id",
    );
    assert_eq!(songs, ["5"], "every fact joins its song and artist");
}

#[test]
fn broken_lines_are_quarantined_with_their_reasons() {
    let dir = TempDir::new("eventsim-reasons");
    let args = local_args(&dir, &hand());
    pipeline(dir.path(), &strs(&args), &[]);
    let lake = dir.join("lake").display().to_string();
    let reasons = lake_column(
        &lake,
        "SELECT layer || ' ' || table_name || ' ' || reason FROM ( \
           SELECT 'bronze' AS layer, table_name, reason FROM bronze.eventsim_quarantine \
           UNION ALL SELECT 'silver', table_name, reason FROM silver.eventsim_quarantine) \
         ORDER BY 1",
    );
    let expected = [
        ("bronze", "bronze.eventsim_listen_events", "JSON"),
        ("bronze", "bronze.eventsim_status_change_events", "UTF-8"),
        (
            "silver",
            "silver.eventsim_auth_events",
            "success is a string, expected boolean",
        ),
        (
            "silver",
            "silver.eventsim_listen_events",
            "ts is a string, expected number",
        ),
        (
            "silver",
            "silver.eventsim_listen_events",
            "userId 'abc' is not a whole number",
        ),
        (
            "silver",
            "silver.eventsim_page_view_events",
            "sessionId is missing, expected number",
        ),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:#?}");
    for (got, (layer, table, why)) in reasons.iter().zip(expected) {
        assert!(
            got.starts_with(&format!("{layer} {table} ")) && got.contains(why),
            "{got} should be {layer} {table} … {why}"
        );
    }
}

#[test]
fn an_event_delivered_again_in_a_later_run_is_counted_once() {
    let dir = TempDir::new("eventsim-again");
    let landing = dir.join("landing");
    for (name, bytes) in files_under(&hand()) {
        let path = landing.join(&name);
        std::fs::create_dir_all(path.parent().unwrap_or(&landing)).expect("mkdir");
        std::fs::write(path, bytes).expect("copy fixture");
    }
    let args = local_args(&dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    // Fluentd delivers the 10:00 hour once more, in a file of its own
    let first = std::fs::read(landing.join("eventsim/listen_events/2022/04/15/10_0.json"))
        .expect("fixture file");
    std::fs::write(
        landing.join("eventsim/listen_events/2022/04/15/10_1.json"),
        first,
    )
    .expect("redeliver");
    let [bronze, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(bronze.num("rows_out"), 2, "the new file's lines are landed");
    assert_eq!(
        silver.reconciled("eventsim", "silver.eventsim_listen_events")["duplicates"],
        3,
        "the month is rebuilt from every copy"
    );
    let lake = dir.join("lake").display().to_string();
    assert_eq!(
        lake_column(
            &lake,
            "SELECT CAST(count(*) AS VARCHAR) FROM silver.eventsim_listen_events"
        ),
        ["5"]
    );
    assert_eq!(activity(&lake), HAND_ACTIVITY);
}

/// The figures `lake-gen eventsim --expected` reports.
fn generated(landing: &Path, args: &[&str]) -> serde_json::Value {
    let expected = landing.join("expected.json");
    let out = landing.join("eventsim");
    let file = expected.display().to_string();
    lake_gen(
        "eventsim",
        &out,
        &[args, &["--expected", file.as_str()]].concat(),
    );
    let text = std::fs::read_to_string(&expected).expect("expected.json");
    std::fs::remove_file(&expected).expect("not landing data");
    serde_json::from_str(&text).expect("expected JSON")
}

#[test]
fn generated_streams_give_what_the_generator_reports() {
    let dir = TempDir::new("eventsim-gen");
    let landing = dir.join("landing");
    let expected = generated(
        &landing,
        &[
            "--days",
            "3",
            "--users",
            "60",
            "--seed",
            "5",
            "--dup-rate",
            "0.02",
            "--bad-rate",
            "0.01",
            "--gzip",
        ],
    );
    let args = local_args(&dir, &landing);
    let [bronze, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    assert_eq!(
        bronze.num("rows_in"),
        expected["lines"].as_u64().unwrap_or(0)
    );
    assert!(
        expected["duplicate_lines"].as_u64() > Some(0) && expected["bad_lines"].as_u64() > Some(0)
    );
    assert_eq!(
        bronze.num("rows_quarantined") + silver.num("rows_quarantined"),
        expected["bad_lines"].as_u64().unwrap_or(0),
        "every broken line is quarantined once"
    );
    for (stream, table) in [
        "listen_events",
        "page_view_events",
        "auth_events",
        "status_change_events",
    ]
    .iter()
    .zip(STREAM_TABLES)
    {
        assert_eq!(
            Some(silver.rows_written(table)),
            expected["events"][stream].as_u64(),
            "{table}"
        );
    }
    let lake = dir.join("lake").display().to_string();
    let want: Vec<String> = expected["days"]
        .as_object()
        .map(|days| {
            days.iter()
                .map(|(day, a)| {
                    let n = |k: &str| a[k].as_u64().unwrap_or(u64::MAX).to_string();
                    format!(
                        "{day} {} {} {} {} {} {} {} {}",
                        n("streams"),
                        n("active_users"),
                        n("logins"),
                        n("failed_logins"),
                        n("upgrades"),
                        n("downgrades"),
                        n("cancellations"),
                        n("guests_sessions")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(want.len() >= 3, "{want:?}");
    assert_eq!(activity(&lake), want);
}

#[test]
fn eventsim_on_localstack_s3_gives_the_hand_derived_activity() {
    let Some(s3) = S3::get() else { return };
    let bucket = s3.bucket("eventsim");
    bucket.put_tree("landing/eventsim", &hand().join("eventsim"));
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let dir = TempDir::new("eventsim-s3");
    let [bronze, silver, _] = pipeline(dir.path(), &["--lake", &lake, "--landing", &landing], &env);
    assert_eq!(bronze.num("rows_in"), 20);
    assert_eq!(silver.rows_written("silver.eventsim_listen_events"), 5);
    let rows = lake_sql(
        &lake,
        "SELECT CAST(day AS VARCHAR) AS day, streams FROM gold.eventsim_activity_daily ORDER BY day",
        &env,
    );
    assert_eq!(
        rows,
        [
            serde_json::json!({"day": "2022-04-15", "streams": 4}),
            serde_json::json!({"day": "2022-04-16", "streams": 1})
        ]
    );
    let report = bucket.get("lake/gold/report/index.html");
    assert!(
        String::from_utf8_lossy(&report).contains("Songs played per day"),
        "gold wrote the report next to the tables"
    );
}
