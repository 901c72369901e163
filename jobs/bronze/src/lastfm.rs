//! The Last.fm 1K source: which landing objects hold what, and how each line is landed.
//!
//! Under `<landing>/lastfm/`: every `.tsv` or `.tsv.gz` whose name starts with
//! `userid-profile` is a profile file, every other `.tsv`/`.tsv.gz` holds plays, and
//! `.tar.gz`/`.tgz` archives (the original `lastfm-dataset-1K.tar.gz`) are read member by
//! member with the same rules. Hidden files (`.DS_Store`, `._*`) and anything else are
//! skipped and counted.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use lake_schema::{BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES, TableDef};
use serde::Serialize;

use crate::lines::{Line, LineReader, MAX_LINE_BYTES};
use crate::rows::{QuarantineRows, Sink, TextRows, WriterGone};

/// What a landing object (or archive member) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plays { gzip: bool },
    Profiles { gzip: bool },
    Archive,
    Ignored(&'static str),
}

pub fn classify(name: &str) -> Kind {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.starts_with('.') {
        return Kind::Ignored("hidden file");
    }
    let lower = base.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        return Kind::Archive;
    }
    let (stem, gzip) = match lower.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (lower.as_str(), false),
    };
    if !stem.ends_with(".tsv") {
        return Kind::Ignored("not a .tsv, .tsv.gz or .tar.gz file");
    }
    if stem.starts_with("userid-profile") {
        Kind::Profiles { gzip }
    } else {
        Kind::Plays { gzip }
    }
}

/// Counts for one landing object, reported in the run record.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ObjectCounts {
    pub object: String,
    /// Data lines read (header lines excluded).
    pub lines: u64,
    pub landed: u64,
    pub quarantined: u64,
    pub header_lines: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_skipped: Vec<String>,
}

/// The three writers a Last.fm landing feeds.
pub struct Sinks {
    pub plays: Sink<TextRows>,
    pub profiles: Sink<TextRows>,
    pub quarantine: Sink<QuarantineRows>,
}

#[derive(Debug)]
pub enum LandError {
    /// Reading failed; the caller decides whether the object is corrupt or the store failed.
    Read {
        after_line: u64,
        error: io::Error,
    },
    Writer(WriterGone),
}

impl From<WriterGone> for LandError {
    fn from(e: WriterGone) -> Self {
        LandError::Writer(e)
    }
}

const READ_BUFFER: usize = 1 << 20;

/// Lands one landing object, already opened as a byte stream.
pub fn land_object(
    read: impl Read,
    name: &str,
    object: &str,
    sinks: &mut Sinks,
    counts: &mut ObjectCounts,
) -> Result<(), LandError> {
    match classify(name) {
        Kind::Plays { gzip } | Kind::Profiles { gzip } => {
            let read: Box<dyn Read> = if gzip {
                Box::new(MultiGzDecoder::new(read))
            } else {
                Box::new(read)
            };
            land_lines(
                BufReader::with_capacity(READ_BUFFER, read),
                classify(name),
                object,
                sinks,
                counts,
            )
        }
        Kind::Archive => land_archive(MultiGzDecoder::new(read), object, sinks, counts),
        Kind::Ignored(_) => Ok(()),
    }
}

fn land_archive(
    read: impl Read,
    object: &str,
    sinks: &mut Sinks,
    counts: &mut ObjectCounts,
) -> Result<(), LandError> {
    let read_err = |after_line, error| LandError::Read { after_line, error };
    let mut archive = tar::Archive::new(read);
    let entries = archive.entries().map_err(|e| read_err(counts.lines, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_err(counts.lines, e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let member = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| read_err(counts.lines, e))?;
        let kind = classify(&member);
        let member_object = format!("{object}!{member}");
        match kind {
            Kind::Plays { gzip } | Kind::Profiles { gzip } => {
                let read: Box<dyn Read> = if gzip {
                    Box::new(MultiGzDecoder::new(entry))
                } else {
                    Box::new(entry)
                };
                let reader = BufReader::with_capacity(READ_BUFFER, read);
                land_lines(reader, kind, &member_object, sinks, counts)?;
            }
            Kind::Archive | Kind::Ignored(_) => counts.members_skipped.push(member),
        }
    }
    Ok(())
}

fn land_lines(
    reader: impl BufRead,
    kind: Kind,
    object: &str,
    sinks: &mut Sinks,
    counts: &mut ObjectCounts,
) -> Result<(), LandError> {
    let (sink, def): (&mut Sink<TextRows>, &TableDef) = match kind {
        Kind::Profiles { .. } => (&mut sinks.profiles, &BRONZE_LASTFM_PROFILES),
        _ => (&mut sinks.plays, &BRONZE_LASTFM_PLAYS),
    };
    let is_profile = matches!(kind, Kind::Profiles { .. });
    let table = def.qualified_name();
    let width = sink.rows.width();
    let quarantine = &mut sinks.quarantine;
    let mut lines = LineReader::new(reader);
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                return Err(LandError::Read {
                    after_line: lines.lines_read(),
                    error,
                });
            }
        };
        let (number, bytes) = match line {
            Line::Data { number, bytes } => (number, bytes),
            Line::TooLong {
                number,
                prefix,
                len,
            } => {
                counts.lines += 1;
                counts.quarantined += 1;
                let reason = format!(
                    "line is {len} bytes long, over the {} MiB limit (first 200 bytes kept)",
                    MAX_LINE_BYTES >> 20
                );
                quarantine
                    .rows
                    .push(&table, object, number, prefix, &reason);
                quarantine.maybe_flush()?;
                continue;
            }
        };
        if is_profile && number == 1 && bytes.starts_with(b"#") {
            counts.header_lines += 1;
            continue;
        }
        counts.lines += 1;
        match check_line(bytes, width) {
            Ok(text) => {
                sink.rows.push(text.split('\t'), object, number);
                counts.landed += 1;
                sink.maybe_flush()?;
            }
            Err(reason) => {
                quarantine.rows.push(&table, object, number, bytes, &reason);
                counts.quarantined += 1;
                quarantine.maybe_flush()?;
            }
        }
    }
    Ok(())
}

/// The line as text when it can be landed as `width` tab-separated fields, else the reason.
pub fn check_line(bytes: &[u8], width: usize) -> Result<&str, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8: bad byte at column {}",
            e.valid_up_to() + 1
        )
    })?;
    if text.is_empty() {
        return Err(format!(
            "empty line (expected {width} tab-separated fields)"
        ));
    }
    let fields = memchr::memchr_iter(b'\t', bytes).count() + 1;
    if fields != width {
        return Err(format!(
            "expected {width} tab-separated fields, found {fields}"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_classified_by_name() {
        assert_eq!(
            classify("lastfm/userid-timestamp-artid-artname-traid-traname.tsv"),
            Kind::Plays { gzip: false }
        );
        assert_eq!(
            classify("lastfm/more-plays-2009.tsv.gz"),
            Kind::Plays { gzip: true }
        );
        assert_eq!(
            classify("lastfm/userid-profile.tsv"),
            Kind::Profiles { gzip: false }
        );
        assert_eq!(
            classify("lastfm/userid-profile.tsv.gz"),
            Kind::Profiles { gzip: true }
        );
        assert_eq!(classify("lastfm/lastfm-dataset-1K.tar.gz"), Kind::Archive);
        assert!(matches!(classify("lastfm/README.txt"), Kind::Ignored(_)));
        assert!(matches!(
            classify("lastfm/._userid-profile.tsv"),
            Kind::Ignored(_)
        ));
    }

    #[test]
    fn a_quote_is_data_and_empty_fields_count() {
        let line = "user_000001\t2009-05-04T23:08:57Z\t\tJohnny \"Hammond\" Smith\t\tTitle";
        assert_eq!(check_line(line.as_bytes(), 6), Ok(line));
    }

    #[test]
    fn wrong_field_counts_and_bad_utf8_have_reasons() {
        assert_eq!(
            check_line(b"a\tb\tc\td", 6),
            Err("expected 6 tab-separated fields, found 4".into())
        );
        assert_eq!(
            check_line(b"a\t\xff\tc", 3),
            Err("not valid UTF-8: bad byte at column 3".into())
        );
        assert!(check_line(b"", 6).is_err_and(|r| r.starts_with("empty line")));
    }
}
