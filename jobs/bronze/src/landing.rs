//! Landing one object: decompressing and unpacking it as its name says, then checking every
//! record against its target's format and sending it to that table or to quarantine.

use std::io::{self, BufRead, BufReader, Read, Seek};

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use crate::lines::{Line, LineReader, MAX_LINE_BYTES};
use crate::rows::{QuarantineRows, Sink, TextRows, WriterGone};
use crate::sources::{Format, Kind, Source, Target};

/// Counts for one landing object, reported in the run record.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ObjectCounts {
    pub object: String,
    /// Records read (header lines excluded).
    pub lines: u64,
    pub landed: u64,
    pub quarantined: u64,
    pub header_lines: u64,
    /// Archive members that are not data (a README, macOS metadata), skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_skipped: Vec<String>,
}

/// The writers a source's landing feeds: one per target table, plus its quarantine.
pub struct Sinks {
    pub targets: Vec<(&'static Target, Sink<TextRows>)>,
    pub quarantine: Sink<QuarantineRows>,
}

impl Sinks {
    pub fn flush(&mut self) -> Result<(), WriterGone> {
        for (_, sink) in &mut self.targets {
            sink.flush()?;
        }
        self.quarantine.flush()
    }

    /// The writer of `target`'s table.
    fn target(&mut self, target: &Target) -> Result<&mut Sink<TextRows>, LandError> {
        self.targets
            .iter_mut()
            .find(|(t, _)| *t == target)
            .map(|(_, sink)| sink)
            .ok_or_else(|| LandError::Undeclared(target.def.qualified_name()))
    }
}

#[derive(Debug)]
pub enum LandError {
    /// Reading failed; the caller decides whether the object is corrupt or the store failed.
    Read {
        after_line: u64,
        error: io::Error,
    },
    Writer(WriterGone),
    /// A record is meant for a table that is not one of the source's targets: the source's
    /// declaration is inconsistent.
    Undeclared(String),
}

impl From<WriterGone> for LandError {
    fn from(e: WriterGone) -> Self {
        LandError::Writer(e)
    }
}

const READ_BUFFER: usize = 1 << 20;

/// Lands one landing object, opened as a byte stream; `name` is its path in the source folder.
pub fn land_object(
    read: impl Read,
    name: &str,
    object: &str,
    source: &Source,
    sinks: &mut Sinks,
    counts: &mut ObjectCounts,
) -> Result<(), LandError> {
    let mut land = Landing {
        source,
        sinks,
        counts,
    };
    match (source.classify)(name) {
        Kind::Records { target, gzip } => land.records(decompress(read, gzip), target, object),
        Kind::TarGz => land.tar(MultiGzDecoder::new(read), object),
        Kind::Zip => land.zip(read, object),
        Kind::Ignored(_) => Ok(()),
    }
}

fn decompress<'a>(read: impl Read + 'a, gzip: bool) -> Box<dyn Read + 'a> {
    if gzip {
        Box::new(MultiGzDecoder::new(read))
    } else {
        Box::new(read)
    }
}

struct Landing<'a> {
    source: &'a Source,
    sinks: &'a mut Sinks,
    counts: &'a mut ObjectCounts,
}

impl Landing<'_> {
    fn read_err(&self, error: io::Error) -> LandError {
        LandError::Read {
            after_line: self.counts.lines,
            error,
        }
    }

    fn tar(&mut self, read: impl Read, object: &str) -> Result<(), LandError> {
        let mut archive = tar::Archive::new(read);
        let entries = archive.entries().map_err(|e| self.read_err(e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.read_err(e))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let member = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| self.read_err(e))?;
            self.member(entry, &member, object)?;
        }
        Ok(())
    }

    /// A zip needs random access: it is spooled to a temporary file first.
    fn zip(&mut self, mut read: impl Read, object: &str) -> Result<(), LandError> {
        let mut file = SpooledFile::new().map_err(|e| self.read_err(e))?;
        io::copy(&mut read, &mut file.0).map_err(|e| self.read_err(e))?;
        file.0.rewind().map_err(|e| self.read_err(e))?;
        let bad = |e: zip::result::ZipError| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut archive = zip::ZipArchive::new(&mut file.0).map_err(|e| self.read_err(bad(e)))?;
        for i in 0..archive.len() {
            let entry = archive.by_index(i).map_err(|e| self.read_err(bad(e)))?;
            if entry.is_dir() {
                continue;
            }
            let member = entry
                .name()
                .map_err(|e| self.read_err(bad(e)))?
                .into_owned();
            self.member(entry, &member, object)?;
        }
        Ok(())
    }

    fn member(&mut self, read: impl Read, member: &str, object: &str) -> Result<(), LandError> {
        match (self.source.classify)(member) {
            Kind::Records { target, gzip } => self.records(
                decompress(read, gzip),
                target,
                &format!("{object}!{member}"),
            ),
            Kind::TarGz | Kind::Zip | Kind::Ignored(_) => {
                self.counts.members_skipped.push(member.to_string());
                Ok(())
            }
        }
    }

    fn records(&mut self, read: impl Read, target: &Target, object: &str) -> Result<(), LandError> {
        let reader = BufReader::with_capacity(READ_BUFFER, read);
        match target.format {
            Format::JsonDocument => self.json_document(reader, target, object),
            format => self.lines(reader, target, format, object),
        }
    }

    fn quarantine(
        &mut self,
        target: &Target,
        object: &str,
        line: u64,
        raw: &[u8],
        reason: &str,
    ) -> Result<(), LandError> {
        let table = target.def.qualified_name();
        self.sinks
            .quarantine
            .rows
            .push(&table, object, line, raw, reason);
        self.counts.quarantined += 1;
        Ok(self.sinks.quarantine.maybe_flush()?)
    }

    /// Lands a checked record: its fields as the target's format splits them.
    fn land(
        &mut self,
        target: &Target,
        record: &str,
        object: &str,
        line: u64,
    ) -> Result<(), LandError> {
        let sink = self.sinks.target(target)?;
        match target.format {
            Format::Delimited { separator, .. } => {
                sink.rows
                    .push(record.split(char::from(separator)), object, line)
            }
            Format::JsonLines | Format::JsonDocument => {
                sink.rows.push(std::iter::once(record), object, line)
            }
        }
        self.counts.landed += 1;
        Ok(sink.maybe_flush()?)
    }

    fn lines(
        &mut self,
        reader: impl BufRead,
        target: &Target,
        format: Format,
        object: &str,
    ) -> Result<(), LandError> {
        let mut lines = LineReader::new(reader);
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(()),
                Err(error) => {
                    return Err(LandError::Read {
                        after_line: lines.lines_read(),
                        error,
                    });
                }
            };
            match line {
                Line::TooLong {
                    number,
                    prefix,
                    len,
                } => {
                    self.counts.lines += 1;
                    let reason = format!(
                        "line is {len} bytes long, over the {} MiB limit (first 200 bytes kept)",
                        MAX_LINE_BYTES >> 20
                    );
                    self.quarantine(target, object, number, prefix, &reason)?;
                }
                Line::Data { number, bytes } => {
                    if let Format::Delimited { header: true, .. } = format
                        && number == 1
                        && bytes.starts_with(b"#")
                    {
                        self.counts.header_lines += 1;
                        continue;
                    }
                    self.counts.lines += 1;
                    match check_record(bytes, format) {
                        Ok(text) => self.land(target, text, object, number)?,
                        Err(reason) => self.quarantine(target, object, number, bytes, &reason)?,
                    }
                }
            }
        }
    }

    /// JSON values one after the other, each landed with the line it starts on.
    fn json_document(
        &mut self,
        reader: impl BufRead,
        target: &Target,
        object: &str,
    ) -> Result<(), LandError> {
        let mut bytes = Vec::new();
        let read = reader
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_err(e))?;
        if read > MAX_LINE_BYTES {
            self.counts.lines += 1;
            let reason = format!("JSON file over the {} MiB limit", MAX_LINE_BYTES >> 20);
            return self.quarantine(target, object, 1, &bytes[..200], &reason);
        }
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(e) => {
                self.counts.lines += 1;
                let reason = format!("not valid UTF-8: bad byte at offset {}", e.valid_up_to());
                return self.quarantine(target, object, 1, body, &reason);
            }
        };
        if text.trim().is_empty() {
            self.counts.lines += 1;
            return self.quarantine(
                target,
                object,
                1,
                b"",
                "empty file (expected a JSON record)",
            );
        }
        let line_of =
            |offset: usize| 1 + text[..offset].bytes().filter(|b| *b == b'\n').count() as u64;
        let mut values =
            serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
        let mut start = 0;
        loop {
            let next = values.next();
            let end = values.byte_offset();
            match next {
                None => return Ok(()),
                Some(Ok(_)) => {
                    let record = text[start..end].trim();
                    let line = line_of(
                        start + (text[start..end].len() - text[start..end].trim_start().len()),
                    );
                    self.counts.lines += 1;
                    self.land(target, record, object, line)?;
                    start = end;
                }
                Some(Err(e)) => {
                    let rest = text[start..].trim();
                    let line =
                        line_of(start + (text[start..].len() - text[start..].trim_start().len()));
                    self.counts.lines += 1;
                    let reason = format!("not valid JSON: {e}");
                    return self.quarantine(target, object, line, rest.as_bytes(), &reason);
                }
            }
        }
    }
}

/// The record as text when it can be landed in `format`, else the reason.
pub fn check_record(bytes: &[u8], format: Format) -> Result<&str, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8: bad byte at column {}",
            e.valid_up_to() + 1
        )
    })?;
    match format {
        Format::Delimited {
            separator, width, ..
        } => {
            let kind = match separator {
                b'\t' => "tab".to_string(),
                other => format!("{}", char::from(other)),
            };
            if text.is_empty() {
                return Err(format!(
                    "empty line (expected {width} {kind}-separated fields)"
                ));
            }
            let fields = memchr::memchr_iter(separator, bytes).count() + 1;
            if fields != width {
                return Err(format!(
                    "expected {width} {kind}-separated fields, found {fields}"
                ));
            }
        }
        Format::JsonLines | Format::JsonDocument => {
            if text.trim().is_empty() {
                return Err("empty line (expected a JSON record)".into());
            }
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| format!("not valid JSON: {e}"))?;
        }
    }
    Ok(text)
}

/// A temporary file removed when dropped.
struct SpooledFile(std::fs::File, std::path::PathBuf);

impl SpooledFile {
    fn new() -> io::Result<Self> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("bronze-{}-{n}.zip", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self(file, path))
    }
}

impl Drop for SpooledFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYS: Format = Format::Delimited {
        separator: b'\t',
        width: 6,
        header: false,
    };

    #[test]
    fn a_quote_is_data_and_empty_fields_count() {
        let line = "user_000001\t2009-05-04T23:08:57Z\t\tJohnny \"Hammond\" Smith\t\tTitle";
        assert_eq!(check_record(line.as_bytes(), PLAYS), Ok(line));
    }

    #[test]
    fn wrong_field_counts_and_bad_utf8_have_reasons() {
        assert_eq!(
            check_record(b"a\tb\tc\td", PLAYS),
            Err("expected 6 tab-separated fields, found 4".into())
        );
        assert_eq!(
            check_record(b"a\t\xff\tc", PLAYS),
            Err("not valid UTF-8: bad byte at column 3".into())
        );
        assert!(check_record(b"", PLAYS).is_err_and(|r| r.starts_with("empty line")));
    }

    #[test]
    fn json_lines_must_parse_but_are_not_typed() {
        assert!(check_record(br#"{"userId":"","ts":1541105830796}"#, Format::JsonLines).is_ok());
        assert!(
            check_record(br#"{"userId": 39"#, Format::JsonLines)
                .is_err_and(|r| r.starts_with("not valid JSON"))
        );
    }
}
