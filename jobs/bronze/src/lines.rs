//! Splitting a byte stream into lines without trusting it: any byte may appear, lines may be
//! huge, the last line may lack its newline, and Windows line ends or a UTF-8 byte-order mark
//! must not leak into the data.

use std::io::{self, BufRead};

/// Lines longer than this are reported as [`Line::TooLong`] instead of being held in memory.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// One line of input. `number` is 1-based.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Data {
        number: u64,
        bytes: &'a [u8],
    },
    /// The line was longer than the limit; `prefix` holds its first bytes, `len` its length.
    TooLong {
        number: u64,
        prefix: &'a [u8],
        len: u64,
    },
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    number: u64,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_LINE_BYTES)
    }

    pub fn with_limit(inner: R, max: usize) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(4096),
            number: 0,
            max,
        }
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.number
    }

    /// The next line, without its `\n` (or `\r\n`), and on line 1 without a UTF-8 BOM.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut len: u64 = 0;
        let mut ended = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            let (take, found) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&avail[..take.min(room)]);
            len += take as u64;
            self.inner.consume(take + usize::from(found));
            if found {
                ended = true;
                break;
            }
        }
        if !ended && len == 0 {
            return Ok(None);
        }
        self.number += 1;
        let mut line: &[u8] = &self.buf;
        if self.number == 1 && line.starts_with(b"\xEF\xBB\xBF") {
            line = &line[3..];
            len -= 3;
        }
        if len as usize <= self.max {
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            Ok(Some(Line::Data {
                number: self.number,
                bytes: line,
            }))
        } else {
            Ok(Some(Line::TooLong {
                number: self.number,
                prefix: &line[..line.len().min(200)],
                len,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::with_limit(io::BufReader::with_capacity(3, input), max);
        let mut out = Vec::new();
        while let Ok(Some(line)) = r.next_line() {
            out.push(match line {
                Line::Data { number, bytes } => {
                    format!("{number}:{}", String::from_utf8_lossy(bytes))
                }
                Line::TooLong { number, len, .. } => format!("{number}:too long ({len})"),
            });
        }
        out
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(all(b"a\nb", 100), ["1:a", "2:b"]);
    }

    #[test]
    fn trailing_newline_adds_no_empty_line_but_blank_lines_are_kept() {
        assert_eq!(all(b"a\n\nb\n", 100), ["1:a", "2:", "3:b"]);
    }

    #[test]
    fn crlf_and_bom_are_stripped() {
        assert_eq!(all(b"\xEF\xBB\xBFx\ty\r\nz\r\n", 100), ["1:x\ty", "2:z"]);
    }

    #[test]
    fn lines_over_the_limit_are_reported_not_held() {
        assert_eq!(
            all(b"ok\n0123456789\nok\n", 5),
            ["1:ok", "2:too long (10)", "3:ok"]
        );
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(all(b"", 100).is_empty());
    }
}
