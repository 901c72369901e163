//! Bad input of every kind is landed or quarantined with a reason, never a panic or a silent
//! drop.

use std::path::Path;

use lake_tests::*;

const GOOD: &str = "user_000001\t2009-05-04T23:08:57Z\t\tArtist\t\tTrack";

/// Every quarantine reason of a layer's source.
fn reasons(lake: &Path, layer: &str, source: &str) -> Vec<String> {
    let lake = lake.display().to_string();
    lake_column(
        &lake,
        &format!("SELECT reason FROM {layer}.{source}_quarantine"),
    )
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
    let clean = lake_column(
        &lake.display().to_string(),
        "SELECT count(*) FROM silver.lastfm_listens \
         WHERE user_id <> 'user_000001' OR track_name LIKE '%' || chr(13)",
    );
    assert_eq!(clean, ["0"]);
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
    assert_eq!(
        silver.reconciled("lastfm", "silver.lastfm_listens")["duplicates"],
        1
    );
}
