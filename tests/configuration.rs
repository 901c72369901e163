//! Configuration, exit codes, logs, and tables an earlier version of the jobs wrote.

use lake_tests::*;

#[test]
fn unusable_configuration_exits_2_with_a_clear_message() {
    let dir = TempDir::new("config");
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "lake_root = \"./x\"\n").expect("write");
    let empty_landing = dir.join("empty-landing");
    std::fs::create_dir_all(&empty_landing).expect("mkdir");
    let lake = dir.join("lake").display().to_string();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "bronze",
            vec!["--lake".into(), "gs://bucket/lake".into()],
            "scheme 'gs' is not supported",
        ),
        (
            "silver",
            vec!["--config".into(), bad_toml.display().to_string()],
            "lake_root",
        ),
        (
            "bronze",
            vec![
                "--lake".into(),
                lake,
                "--landing".into(),
                empty_landing.display().to_string(),
            ],
            "no landing data",
        ),
        ("gold", vec!["--no-such-flag".into()], "--no-such-flag"),
    ];
    for (job, args, message) in cases {
        let ran = run(job, dir.path(), &strs(&args), &[]);
        assert_eq!(ran.code, 2, "{job} {args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(message),
            "{job} {args:?}: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    }
}

#[test]
fn parquet_codec_and_row_group_size_come_from_lake_toml() {
    use lake_schema::{BRONZE_LASTFM_PLAYS, ColumnType, Encoding as Layout, SILVER_LASTFM_LISTENS};
    use parquet::basic::{Compression, Encoding};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = TempDir::new("parquet-settings");
    let config = dir.join("lake.toml");
    std::fs::write(
        &config,
        "parquet_compression = \"zstd(3)\"\nparquet_row_group_rows = 40\n",
    )
    .expect("write");
    let mut args = local_args(&dir, &hand_landing());
    args.extend(["--config".into(), config.display().to_string()]);
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    run("silver", dir.path(), &strs(&args), &[]).ok();
    let mut row_groups = 0;
    for def in [&BRONZE_LASTFM_PLAYS, &SILVER_LASTFM_LISTENS] {
        // the catalogue's delta-encoded columns, which the lake's settings must not undo
        let delta: Vec<(&str, Encoding)> = def
            .columns
            .iter()
            .filter(|c| c.encoding == Layout::Delta)
            .map(|c| match c.ty {
                ColumnType::Text => (c.name, Encoding::DELTA_BYTE_ARRAY),
                _ => (c.name, Encoding::DELTA_BINARY_PACKED),
            })
            .collect();
        assert_eq!(delta.len(), 2, "{}: {delta:?}", def.qualified_name());
        let files = files_under(&dir.join("lake").join(def.path()));
        for (file, bytes) in files.into_iter().filter(|(f, _)| f.ends_with(".parquet")) {
            let reader =
                SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("a Parquet file");
            for group in reader.metadata().row_groups() {
                row_groups += 1;
                assert!(group.num_rows() <= 40, "{file}: {}", group.num_rows());
                for column in group.columns() {
                    assert!(
                        matches!(column.compression(), Compression::ZSTD(_)),
                        "{file} {}: {:?}",
                        column.column_path(),
                        column.compression()
                    );
                    let name = column.column_path().string();
                    let encodings: Vec<Encoding> = column.encodings().collect();
                    match delta.iter().find(|(c, _)| *c == name) {
                        Some((_, want)) => assert!(
                            encodings.contains(want)
                                && !encodings.contains(&Encoding::RLE_DICTIONARY),
                            "{file} {name}: {encodings:?}"
                        ),
                        None if name == "user_id" => assert!(
                            encodings.contains(&Encoding::RLE_DICTIONARY),
                            "{file} {name}: {encodings:?}"
                        ),
                        None => {}
                    }
                }
            }
        }
    }
    // 146 plays landed and 137 listens: at most 40 rows a group makes at least 4 + 4 groups
    assert!(row_groups >= 8, "{row_groups} row groups");
    std::fs::write(&config, "parquet_compression = \"snappy2\"\n").expect("write");
    let ran = run("bronze", dir.path(), &strs(&args), &[]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("parquet_compression 'snappy2' is not a Parquet codec"),
        "{}",
        ran.stderr
    );
}

#[test]
fn an_unreachable_store_exits_1_naming_it() {
    let dir = TempDir::new("down");
    let config = dir.join("lake.toml");
    std::fs::write(&config, "s3_max_retries = 1\ns3_retry_timeout_secs = 3\n").expect("write");
    let env = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    for job in ["bronze", "silver", "gold"] {
        let ran = run(
            job,
            dir.path(),
            &[
                "--lake",
                "s3://nowhere/lake",
                "--landing",
                "s3://nowhere/landing",
            ],
            &env,
        );
        assert_eq!(ran.code, 1, "{job}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("s3://nowhere/"),
            "{job} names the store: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
        assert_eq!(ran.record["outcome"], "failed");
    }
}

#[test]
fn a_rebuilt_table_follows_a_changed_catalogue_and_keeps_its_history() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("schema");
    let lake = dir.join("lake");
    // a silver table as an older version of the jobs wrote it: other columns
    let script = r#"
import sys, pyarrow as pa
from deltalake import write_deltalake
write_deltalake(sys.argv[1] + "/silver/lastfm/users", pa.table({"user_id": ["old"], "age_text": ["12"]}))
"#;
    python_output(&py, &["-c", script, &lake.display().to_string()], &[]);
    let args = local_args(&dir, &hand_landing());
    let [_, silver, _] = pipeline(dir.path(), &strs(&args), &[]);
    assert!(
        silver.stderr.contains("replacing its schema"),
        "{}",
        silver.stderr
    );
    let rows = lake_sql(
        &lake.display().to_string(),
        "SELECT count(*) AS users, count(registered) AS registered FROM silver.lastfm_users",
        &[],
    );
    // users 1 and 2 have a sign-up date, users 3 and 4 an empty one
    assert_eq!(rows, [serde_json::json!({"users": 4, "registered": 2})]);
    let versions = std::fs::read_dir(lake.join("silver/lastfm/users/_delta_log"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        versions, 2,
        "the old version stays in the log (time travel)"
    );
}

#[test]
fn too_much_quarantine_fails_the_run_with_exit_code_3() {
    let dir = TempDir::new("ratio");
    let args = local_args(&dir, &hand_landing());
    // bronze quarantines 5 of 157 lines (3.2%)
    let strict = run(
        "bronze",
        dir.path(),
        &[strs(&args), vec!["--max-quarantine-ratio", "0.01"]].concat(),
        &[],
    );
    assert_eq!(strict.code, 3, "{}", strict.stderr);
    assert!(
        strict.stderr.contains("over --max-quarantine-ratio 0.01"),
        "{}",
        strict.stderr
    );
    assert_eq!(strict.record["outcome"], "failed");
    assert_eq!(
        strict.rows_written("bronze.lastfm_plays"),
        146,
        "the tables were written all the same"
    );
    let lenient = run(
        "silver",
        dir.path(),
        &[strs(&args), vec!["--max-quarantine-ratio", "0.5"]].concat(),
        &[],
    );
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
    let bad = run(
        "gold",
        dir.path(),
        &[strs(&args), vec!["--max-quarantine-ratio", "2"]].concat(),
        &[],
    );
    assert_eq!(
        bad.code, 2,
        "a ratio over 1 is a usage error: {}",
        bad.stderr
    );
}

#[test]
fn json_logs_are_one_json_object_per_line() {
    let dir = TempDir::new("jsonlog");
    let args = local_args(&dir, &hand_landing());
    let ran = run(
        "bronze",
        dir.path(),
        &[strs(&args), vec!["--log-format", "json"]].concat(),
        &[],
    )
    .ok();
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert!(lines.len() >= 3, "{}", ran.stderr);
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value.get("level").is_some() && value.get("message").is_some(),
            "{line}"
        );
    }
    assert!(ran.stderr.contains("bronze succeeded"));
}

#[test]
fn a_table_an_earlier_version_wrote_stops_the_job_with_what_to_do() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("old-lake");
    let lake = dir.join("lake");
    // meta.landed_objects as the version before bronze batches wrote it
    let script = r#"
import sys, pyarrow as pa
from deltalake import write_deltalake
write_deltalake(sys.argv[1] + "/meta/landed_objects", pa.table({"source": ["lastfm"], "lines": [3]}))
"#;
    python_output(&py, &["-c", script, &lake.display().to_string()], &[]);
    let args = local_args(&dir, &hand_landing());
    let bronze = run("bronze", dir.path(), &strs(&args), &[]);
    assert_eq!(bronze.code, 2, "not worth a retry: {}", bronze.stderr);
    assert!(
        bronze.stderr.contains("an earlier version wrote it")
            && bronze.stderr.contains("move the lake away"),
        "{}",
        bronze.stderr
    );
}
