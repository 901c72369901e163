//! Other engines (DuckDB, Polars, deltalake) read the lake the jobs write, local and on S3,
//! with the same rows, types and answer.

use std::path::Path;

use lake_tests::*;

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
