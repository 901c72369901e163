//! The three job binaries, run as a user runs them, on local and LocalStack S3 lakes.

use std::path::Path;
use std::process::Command;

use lake_tests::*;

/// A fresh bucket with the hand fixture under `landing/lastfm/`.
fn hand_bucket(s3: &S3, tag: &str) -> Bucket {
    let bucket = s3.bucket(tag);
    for f in [PLAYS, PROFILES] {
        let bytes = std::fs::read(hand_landing().join("lastfm").join(f)).expect("fixture");
        bucket.put(&format!("landing/lastfm/{f}"), bytes);
    }
    bucket
}

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
    assert_eq!(silver.detail("duplicate_plays_dropped"), 1);
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
    let py = match python() {
        Some(py) => py,
        None => return,
    };
    let script = r#"
import sys, polars as pl
for t in ["bronze/lastfm/quarantine", "silver/lastfm/quarantine"]:
    df = pl.read_delta(sys.argv[1] + "/" + t).sort("source_line")
    for r in df.iter_rows(named=True):
        print(t.split("/")[0], r["source_line"], r["reason"])
"#;
    let lake = dir.join("lake").display().to_string();
    let out = python_output(&py, &["-c", script, &lake], &[]);
    let text = String::from_utf8_lossy(&out);
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
        "up to date: no new bronze batch"
    );
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    assert_eq!(answer, hand_expected());
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
    if let Some(duckdb) = peer_answer(peers_py(), "duckdb", &head) {
        assert_eq!(answer, duckdb, "equals peers.py duckdb");
    }
    if let Some(duckdb) = peer_answer(bench_peers_py(), "duckdb", &head) {
        assert_eq!(answer, duckdb, "equals bench/peers.py duckdb");
    }
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
    assert!(silver.detail("duplicate_plays_dropped").as_u64() > Some(0));
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/lastfm/top_songs.tsv")).expect("answer");
    assert_eq!(answer.lines().count(), 11);
    let plays = landing.join("lastfm").join(PLAYS);
    // the shared reference peers, and the project's own that `make bench` times
    for engine in ["duckdb", "polars"] {
        if let Some(peer) = peer_answer(peers_py(), engine, &plays) {
            assert_eq!(answer, peer, "equals peers.py {engine}");
        }
        if let Some(peer) = peer_answer(bench_peers_py(), engine, &plays) {
            assert_eq!(answer, peer, "equals bench/peers.py {engine}");
        }
    }
}

/// Reads the lake the hand fixture made with DuckDB, Polars and deltalake (`read_lake.py`) and
/// checks rows, types and the answer.
fn check_other_engines(py: &Path, lake: &str, env: &[(&str, &str)]) {
    let tables = [
        ("bronze/lastfm/plays", 146),
        ("silver/lastfm/listens", 137),
        ("silver/lastfm/users", 4),
        ("gold/lastfm/sessions", 82),
        ("gold/lastfm/top_sessions", 50),
        ("gold/lastfm/top_songs", 10),
    ];
    let script = repo()
        .join("tests/interop/read_lake.py")
        .display()
        .to_string();
    let args: Vec<&str> = [script.as_str(), lake]
        .into_iter()
        .chain(tables.iter().map(|(t, _)| *t))
        .collect();
    let seen: serde_json::Value =
        serde_json::from_slice(&python_output(py, &args, env)).expect("read_lake.py prints JSON");
    let expected_top: Vec<Vec<serde_json::Value>> = hand_expected()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            vec![
                f[0].into(),
                f[1].into(),
                f[2].parse::<u64>().unwrap_or_default().into(),
            ]
        })
        .collect();
    for engine in ["duckdb", "polars", "deltalake"] {
        let e = &seen[engine];
        assert!(
            e.get("error").is_none(),
            "{engine} on {lake}: {}",
            e["error"]
        );
        for (table, rows) in tables {
            assert_eq!(e["counts"][table], rows, "{engine} counts {table}");
        }
        assert_eq!(
            e["top_songs"],
            serde_json::json!(expected_top),
            "{engine} top songs"
        );
        // delta-encoded columns decode to the same values everywhere
        assert_eq!(e["max"], seen["duckdb"]["max"], "{engine} max values");
    }
    // bronze keeps the fixture's impossible timestamp as written; silver quarantines it
    assert_eq!(
        seen["duckdb"]["max"]["bronze/lastfm/plays"]["timestamp"],
        "2009-13-45T99:61:00Z"
    );
    // UTC microsecond timestamps, signed integers, dates
    let duck = &seen["duckdb"]["types"];
    assert_eq!(
        duck["silver/lastfm/listens"]["played_at"],
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(duck["silver/lastfm/listens"]["year"], "INTEGER");
    assert_eq!(duck["silver/lastfm/users"]["registered"], "DATE");
    assert_eq!(
        seen["deltalake"]["types"]["silver/lastfm/listens"]["played_at"],
        "timestamp[us, tz=UTC]"
    );
}

#[test]
fn other_engines_read_the_local_lake_with_the_same_rows_and_types() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("interop");
    let args = local_args(&dir, &hand_landing());
    pipeline(dir.path(), &strs(&args), &[]);
    check_other_engines(&py, &dir.join("lake").display().to_string(), &[]);
}

#[test]
fn other_engines_read_the_s3_lake_with_the_same_rows_and_types() {
    let (Some(py), Some(s3)) = (python(), S3::get()) else {
        return;
    };
    let bucket = hand_bucket(&s3, "interop");
    let env = s3.env();
    let env = pairs(&env);
    let (lake, landing) = (bucket.url("lake"), bucket.url("landing"));
    let dir = TempDir::new("interop-s3");
    pipeline(dir.path(), &["--lake", &lake, "--landing", &landing], &env);
    check_other_engines(&py, &lake, &env);
}

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

/// Rows bronze landed into `table`, from its run record.
fn landed(bronze: &Ran, table: &str) -> u64 {
    bronze.rows_written(table)
}

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
        assert_eq!(landed(ran, "bronze.sparkify_songs"), 71);
        assert_eq!(landed(ran, "bronze.sparkify_events"), 8056);
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

/// Every object under `dir`, as (path relative to `dir`, bytes).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

#[test]
fn sparkify_on_localstack_s3_gives_the_known_check_values() {
    let Some(tree) = shared_data("sparkify") else {
        return;
    };
    let Some(s3) = S3::get() else { return };
    let bucket = s3.bucket("sparkify");
    for sub in ["song_data", "log_data"] {
        for (rel, bytes) in files_under(&tree.join(sub)) {
            bucket.put(&format!("landing/sparkify/{sub}/{rel}"), bytes);
        }
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
    let s = silver.detail("sparkify");
    assert_eq!(
        (
            &s["songs"],
            &s["artists"],
            &s["songplays"],
            &s["songplays_matching_song_data"],
            &s["users"]
        ),
        (&71.into(), &69.into(), &6820.into(), &1.into(), &97.into()),
        "known check values: {s}"
    );
    assert_eq!(s["events_in"], 8056);
    assert_eq!(s["events_of_other_pages"], 1236);
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
    let songplays = format!("delta_scan('{lake}/silver/sparkify/songplays')");
    let Some(rows) = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE song_title LIKE '%Ã%' OR song_title LIKE '%Â%' \
                                  OR artist_name LIKE '%Ã%' OR artist_name LIKE '%Â%'), \
                count(*) FILTER (WHERE artist_name = 'Beyoncé'), \
                count(DISTINCT song_title) FILTER (WHERE regexp_matches(song_title, '[^ -~]')) \
         FROM {songplays}"
    )) else {
        return;
    };
    // MANIFEST.md: 153 titles and 82 names were double-encoded; none is left, all read right
    assert_eq!(rows[0][0], 0, "no mojibake left");
    assert!(rows[0][1].as_u64() > Some(0), "Beyoncé repaired");
    assert!(
        rows[0][2].as_u64() >= Some(100),
        "non-ASCII titles: {}",
        rows[0][2]
    );
    let matched = duckdb(&format!(
        "SELECT song_title, artist_name, user_id, epoch_ms(start_time) FROM {songplays} WHERE song_id IS NOT NULL"
    ))
    .unwrap_or_default();
    assert_eq!(matched.len(), 1);
    assert_eq!(
        matched[0],
        serde_json::json!(["Setanta matins", "Elena", "15", 1542837407796_u64])
            .as_array()
            .cloned()
            .unwrap_or_default()
    );
    // the same 20-minute question over Sparkify plays equals DuckDB's answer on those plays
    let plays = dir.join("plays.tsv");
    let exported = duckdb(&format!(
        "COPY (SELECT user_id, strftime(start_time, '%Y-%m-%dT%H:%M:%SZ'), '', artist_name, '', song_title \
         FROM {songplays}) TO '{}' (DELIMITER '\t', HEADER false, QUOTE '')",
        plays.display()
    ));
    assert!(exported.is_some());
    let answer =
        std::fs::read_to_string(dir.join("lake/gold/sparkify/top_songs.tsv")).expect("answer");
    if let Some(peer) = peer_answer(bench_peers_py(), "duckdb", &plays) {
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
    let s = silver.detail("sparkify");
    // events 1 and 9 are Setanta matins by Elena, as in the song data
    assert_eq!(
        (&s["songplays"], &s["songplays_matching_song_data"]),
        (&3.into(), &2.into()),
        "{s}"
    );
    assert_eq!(
        (&s["events_rejected"], &s["events_of_other_pages"]),
        (&3.into(), &1.into()),
        "{s}"
    );
    assert_eq!(
        (&s["songs"], &s["songs_rejected"], &s["users"]),
        (&1.into(), &1.into(), &1.into()),
        "{s}"
    );
    assert_eq!(
        silver.rows_written("silver.sparkify_users_history"),
        2,
        "paid, then free"
    );
    let lake = dir.join("lake").display().to_string();
    let Some(reasons) = duckdb(&format!(
        "SELECT reason FROM delta_scan('{lake}/bronze/sparkify/quarantine') UNION ALL \
         SELECT reason FROM delta_scan('{lake}/silver/sparkify/quarantine') ORDER BY 1"
    )) else {
        return;
    };
    let reasons: Vec<String> = reasons
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect();
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
    let users = duckdb(&format!(
        "SELECT user_id, level FROM delta_scan('{lake}/silver/sparkify/users')"
    ))
    .unwrap_or_default();
    assert_eq!(
        users,
        vec![vec![serde_json::json!("15"), serde_json::json!("free")]]
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
    let s = silver.detail("sparkify");
    assert_eq!(s["events_rejected"], 0, "{s}");
    assert!(
        s["songplays_matching_song_data"].as_u64() > Some(0),
        "generated plays match the song data: {s}"
    );
    assert!(
        silver.rows_written("silver.sparkify_users_history")
            > silver.rows_written("silver.sparkify_users")
    );
    assert!(gold.rows_written("gold.sparkify_top_songs") == 10);
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
    let users = format!("delta_scan('{}/silver/lastfm/users')", lake.display());
    let Some(rows) = duckdb(&format!("SELECT count(*), count(registered) FROM {users}")) else {
        return;
    };
    // users 1 and 2 have a sign-up date, users 3 and 4 an empty one
    assert_eq!(rows, vec![vec![serde_json::json!(4), serde_json::json!(2)]]);
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

const GOOD: &str = "user_000001\t2009-05-04T23:08:57Z\t\tArtist\t\tTrack";

/// Every object's records are landed or quarantined; returns all quarantine reasons.
fn reasons(lake: &Path, layer: &str, source: &str) -> Vec<String> {
    let table = format!(
        "delta_scan('{}/{layer}/{source}/quarantine')",
        lake.display()
    );
    duckdb(&format!("SELECT reason FROM {table}"))
        .unwrap_or_default()
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_corpus_of_bad_input_is_landed_or_quarantined_without_a_panic() {
    let dir = TempDir::new("corpus");
    let landing = dir.join("landing");
    let (lastfm, sparkify) = (landing.join("lastfm"), landing.join("sparkify"));
    std::fs::create_dir_all(&lastfm).expect("mkdir");
    std::fs::create_dir_all(sparkify.join("log_data")).expect("mkdir");
    let write =
        |path: std::path::PathBuf, bytes: Vec<u8>| std::fs::write(path, bytes).expect("write");
    let out_of_range = [
        "user_000001\t2009-13-45T99:61:00Z\t\tA\t\tT",
        "user_000001\t99999-01-01T00:00:00Z\t\tA\t\tT",
        "user_000001\t2009-02-29T00:00:00Z\t\tA\t\tT",
        "user_000001\t-001-01-01T00:00:00Z\t\tA\t\tT",
    ];
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("crlf.tsv", format!("{GOOD}\r\n{GOOD} 2\r\n").into_bytes()),
        ("bom.tsv", format!("\u{feff}{GOOD} bom\n").into_bytes()),
        (
            "invalid-utf8.tsv",
            b"user_000001\t2009-05-04T23:08:57Z\t\tBad \xff\t\tT\n".to_vec(),
        ),
        ("nul.tsv", format!("{GOOD} with \0 a nul\n").into_bytes()),
        (
            "no-newline.tsv",
            format!("{GOOD} a\n{GOOD} last").into_bytes(),
        ),
        (
            "long-line.tsv",
            format!("{GOOD} {}\n", "x".repeat(10 << 20)).into_bytes(),
        ),
        ("zero-bytes.tsv", Vec::new()),
        ("blank-lines.tsv", b"\n\n".to_vec()),
        ("tabs.tsv", format!("{GOOD}\twith a tab\n").into_bytes()),
        ("out-of-range.tsv", out_of_range.join("\n").into_bytes()),
        ("corrupt.tsv.gz", b"this is not gzip at all".to_vec()),
    ];
    for (name, bytes) in files {
        write(lastfm.join(name), bytes);
    }
    let mut tgz = gzip(&{
        // a tar with one member, cut off in the middle of its data
        let mut header = [0u8; 512];
        header[..10].copy_from_slice(b"member.tsv");
        header[100..107].copy_from_slice(b"0000644");
        header[124..135].copy_from_slice(b"00000100000");
        header[156] = b'0';
        header[257..262].copy_from_slice(b"ustar");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum::<u32>() + 8 * u32::from(b' ');
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let mut tar = header.to_vec();
        tar.extend(format!("{GOOD} in tar\n").as_bytes());
        tar
    });
    tgz.truncate(tgz.len() - 8);
    write(lastfm.join("truncated.tar.gz"), tgz);
    write(
        sparkify.join("log_data/events.json"),
        [
            r#"{"page":"NextSong"}"#,
            r#"{"page":"Home","ts":"soon","userId":"1","sessionId":1,"itemInSession":0,"level":"free"}"#,
            r#"[1, 2, 3]"#,
            r#"{"page": "Home", "#,
        ]
        .join("\n")
        .into_bytes(),
    );
    write(
        sparkify.join("song-data.zip"),
        b"PK\x03\x04 truncated".to_vec(),
    );

    let args = local_args(&dir, &landing);
    let [bronze, silver, gold] = pipeline(dir.path(), &strs(&args), &[]);
    for ran in [&bronze, &silver, &gold] {
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    }
    assert_eq!(
        bronze.num("rows_in"),
        bronze.num("rows_out") + bronze.num("rows_quarantined")
    );
    for source in ["lastfm", "sparkify"] {
        for object in bronze
            .source_detail(source, "objects")
            .as_array()
            .expect("objects")
        {
            let n = |k: &str| object[k].as_u64().unwrap_or_default();
            assert_eq!(n("lines"), n("landed") + n("quarantined"), "{object}");
        }
    }
    // good lines: crlf 2, bom 1, nul 1, no-newline 2, long line 1, out-of-range 4 (silver rejects
    // them), and the tar member's line, read before the archive turned out truncated
    assert_eq!(bronze.rows_written("bronze.lastfm_plays"), 12);
    assert_eq!(silver.rows_written("silver.lastfm_listens"), 8);
    let lake = dir.join("lake");
    let Some(_) = python() else { return };
    let bronze_reasons = reasons(&lake, "bronze", "lastfm").join("\n");
    for expected in [
        "not valid UTF-8: bad byte at column",
        "empty line (expected 6 tab-separated fields)",
        "expected 6 tab-separated fields, found 7",
        "object is corrupt or truncated after record 0",
    ] {
        assert!(
            bronze_reasons.contains(expected),
            "no {expected:?} in:\n{bronze_reasons}"
        );
    }
    let silver_reasons = reasons(&lake, "silver", "lastfm").join("\n");
    for bad in [
        "2009-13-45T99:61:00Z",
        "99999-01-01T00:00:00Z",
        "2009-02-29T00:00:00Z",
        "-001-01-01T00:00:00Z",
    ] {
        assert!(
            silver_reasons.contains(&format!("timestamp '{bad}' is not a valid")),
            "{silver_reasons}"
        );
    }
    let sparkify_reasons = [
        reasons(&lake, "bronze", "sparkify"),
        reasons(&lake, "silver", "sparkify"),
    ]
    .concat()
    .join("\n");
    for expected in [
        "ts is missing, expected number",
        "ts is a string, expected number",
        "record is not a JSON object",
        "not valid JSON",
        "object is corrupt or truncated",
    ] {
        assert!(
            sparkify_reasons.contains(expected),
            "no {expected:?} in:\n{sparkify_reasons}"
        );
    }
    // the BOM and the \r are not data
    let listens = format!("delta_scan('{}/silver/lastfm/listens')", lake.display());
    let clean = duckdb(&format!(
        "SELECT count(*) FROM {listens} WHERE user_id <> 'user_000001' OR track_name LIKE '%' || chr(13)"
    ));
    assert_eq!(clean, Some(vec![vec![serde_json::json!(0)]]));
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
fn a_changed_landing_object_is_landed_again_and_flagged() {
    let dir = TempDir::new("changed");
    let landing = dir.join("landing");
    std::fs::create_dir_all(landing.join("lastfm")).expect("mkdir");
    let file = landing.join("lastfm").join(PLAYS);
    std::fs::write(&file, format!("{GOOD}\n")).expect("write");
    let args = local_args(&dir, &landing);
    run("bronze", dir.path(), &strs(&args), &[]).ok();
    std::fs::write(&file, format!("{GOOD}\n{GOOD} 2\n")).expect("rewrite");
    let again = run("bronze", dir.path(), &strs(&args), &[]).ok();
    let changed = again.source_detail("lastfm", "objects_changed").to_string();
    assert!(changed.contains(PLAYS), "flagged as changed: {changed}");
    assert_eq!(again.num("rows_in"), 2, "the whole new version is landed");
    assert!(again.stderr.contains("changed since it was landed"));
    // silver counts the repeated first line once
    let silver = run("silver", dir.path(), &strs(&args), &[]).ok();
    assert_eq!(silver.rows_written("silver.lastfm_listens"), 2);
    assert_eq!(silver.detail("duplicate_plays_dropped"), 1);
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
    assert_eq!(silver.detail("duplicate_plays_dropped"), 1);
}

#[test]
fn a_held_lease_blocks_a_second_run_and_an_expired_one_is_taken_over() {
    let dir = TempDir::new("lease");
    let lake = dir.join("lake");
    std::fs::create_dir_all(lake.join("_leases")).expect("mkdir");
    let lease = lake.join("_leases/gold.json");
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
    assert!(!lease.exists(), "released at the end of the run");

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
