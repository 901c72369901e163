//! JSON records read by key, for the `json_*` SQL functions ([`crate::functions`]).
//!
//! A checked view reads some 40 keys of each record, one function call each, over the same
//! array of a batch. The array is parsed once: each record is validated by serde_json (without
//! building a value) and its top-level keys are located as byte ranges of the text, so that a
//! lookup is a scan of a few keys and a value is decoded only when it is asked for. The last
//! array parsed on a thread is kept with what it parsed to; the array is held, so its buffers
//! cannot be freed and reused by another array while they are compared by address.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayData, ArrayRef, StringViewArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use serde::de::IgnoredAny;

/// One top-level member of a record: where its key (without the quotes, as written) and its
/// value (as written) are in the record's text.
#[derive(Debug, Clone)]
struct Member {
    key: Range<u32>,
    value: Range<u32>,
}

/// The records of one array, each located when it is a JSON object.
#[derive(Debug)]
pub struct Records {
    text: StringViewArray,
    members: Vec<Member>,
    /// Record `i`'s members are `members[spans[i]]`; `None` when it is not a JSON object.
    spans: Vec<Option<Range<usize>>>,
}

/// The raw JSON text of one value.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a>(&'a str);

/// `record[key]`: `None` when the record is not a JSON object, `Some(None)` when the key is
/// missing.
pub type Lookup<'a> = Option<Option<Raw<'a>>>;

impl Records {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Record `i`'s value of `key` (the last one, when a key is repeated, as serde_json reads
    /// it).
    pub fn get(&self, i: usize, key: &str) -> Lookup<'_> {
        let span = self.spans.get(i)?.clone()?;
        let text = self.text.value(i);
        let found = self.members[span].iter().rev().find(|m| {
            let written = &text[m.key.start as usize..m.key.end as usize];
            written == key || (written.contains('\\') && decode(written).as_deref() == Some(key))
        });
        Some(found.map(|m| Raw(&text[m.value.start as usize..m.value.end as usize])))
    }

    fn parse(text: StringViewArray) -> Records {
        let mut members = Vec::new();
        let spans = text
            .iter()
            .map(|record| {
                let record = record?;
                serde_json::from_str::<IgnoredAny>(record).ok()?;
                let start = members.len();
                match locate(record.as_bytes(), &mut members) {
                    Some(()) => Some(start..members.len()),
                    None => {
                        members.truncate(start);
                        None
                    }
                }
            })
            .collect();
        Records {
            text,
            members,
            spans,
        }
    }
}

impl<'a> Raw<'a> {
    /// What the value is, in the words of `json_kind`.
    pub fn kind(self) -> &'static str {
        match self.0.as_bytes().first() {
            Some(b'"') => "string",
            Some(b'{') => "object",
            Some(b'[') => "array",
            Some(b't' | b'f') => "boolean",
            Some(b'n') => "null",
            _ => "number",
        }
    }

    pub fn as_str(self) -> Option<Cow<'a, str>> {
        let inner = self.0.strip_prefix('"')?.strip_suffix('"')?;
        if inner.contains('\\') {
            serde_json::from_str::<String>(self.0).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(inner))
        }
    }

    pub fn as_f64(self) -> Option<f64> {
        (self.kind() == "number").then(|| self.0.parse().ok())?
    }

    /// A whole number: an integer, or a number with no fraction such as `1540919166796.0`
    /// (below 9e15, where every whole number is exact).
    pub fn as_whole(self) -> Option<i64> {
        if self.kind() != "number" {
            return None;
        }
        self.0.parse::<i64>().ok().or_else(|| {
            let f = self.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        })
    }

    pub fn as_bool(self) -> Option<bool> {
        match self.0 {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

/// A key written with escapes, decoded.
fn decode(written: &str) -> Option<String> {
    serde_json::from_str(&format!("\"{written}\"")).ok()
}

/// Appends the members of the JSON text `b` (valid JSON) to `out`; `None` when it is not an
/// object.
fn locate(b: &[u8], out: &mut Vec<Member>) -> Option<()> {
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(());
    }
    loop {
        let key_end = string_end(b, i)?;
        let key = i + 1..key_end - 1;
        i = skip_space(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_space(b, i + 1);
        let end = value_end(b, start)?;
        out.push(Member {
            key: u32::try_from(key.start).ok()?..u32::try_from(key.end).ok()?,
            value: u32::try_from(start).ok()?..u32::try_from(end).ok()?,
        });
        i = skip_space(b, end);
        match b.get(i) {
            Some(b',') => i = skip_space(b, i + 1),
            Some(b'}') => return Some(()),
            _ => return None,
        }
    }
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string that starts at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => j = string_end(b, j)?,
                    b'{' | b'[' => {
                        depth += 1;
                        j += 1;
                    }
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        j += 1;
                        if depth == 0 {
                            return Some(j);
                        }
                    }
                    _ => j += 1,
                }
            }
        }
        _ => {
            let mut j = i;
            while !matches!(
                b.get(j),
                None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            ) {
                j += 1;
            }
            Some(j)
        }
    }
}

thread_local! {
    static LAST_PARSED: RefCell<Option<(ArrayData, Arc<Records>)>> = const { RefCell::new(None) };
}

/// The first argument's records, located by the last call on this thread if it read the same
/// array; a scalar record stands for every row of the other arguments.
pub fn records(args: &[ColumnarValue]) -> Result<Arc<Records>> {
    let rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let records: ArrayRef = match &args[0] {
        ColumnarValue::Array(a) => Arc::clone(a),
        ColumnarValue::Scalar(s) => s.to_array_of_size(rows)?,
    };
    let data = records.to_data();
    if let Some(hit) = LAST_PARSED.with_borrow(|last| {
        last.as_ref()
            .filter(|(seen, _)| seen.ptr_eq(&data))
            .map(|(_, parsed)| Arc::clone(parsed))
    }) {
        return Ok(hit);
    }
    let text = cast(&records, &DataType::Utf8View)?;
    let text = text
        .as_any()
        .downcast_ref::<StringViewArray>()
        .cloned()
        .unwrap_or_else(|| StringViewArray::new_null(text.len()));
    let parsed = Arc::new(Records::parse(text));
    LAST_PARSED.set(Some((data, Arc::clone(&parsed))));
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(record: &str) -> Arc<Records> {
        let array: ArrayRef = Arc::new(StringViewArray::from(vec![record]));
        records(&[ColumnarValue::Array(array)]).unwrap()
    }

    #[test]
    fn values_are_found_by_key_as_serde_json_reads_them() {
        let r = one(
            r#" { "ts" : 1540919166796.0, "s": "a\"b\u00e9", "n": null, "o": {"x": [1, "}"]},
                 "b": false, "e\u0078": -12, "ts2": 12, "ts2": 13, "big": 18446744073709551616,
                 "half": 1.5, "quoted": "38" } "#,
        );
        let get = |key| r.get(0, key).unwrap();
        assert_eq!(get("ts").unwrap().as_whole(), Some(1540919166796));
        assert_eq!(get("s").unwrap().as_str().as_deref(), Some("a\"bé"));
        assert_eq!(get("n").unwrap().kind(), "null");
        assert_eq!(get("o").unwrap().0, r#"{"x": [1, "}"]}"#);
        assert_eq!(get("b").unwrap().as_bool(), Some(false));
        assert_eq!(
            get("ex").unwrap().as_whole(),
            Some(-12),
            "escaped keys are decoded"
        );
        assert_eq!(
            get("ts2").unwrap().as_whole(),
            Some(13),
            "a repeated key: the last"
        );
        assert_eq!(get("big").unwrap().as_whole(), None);
        assert_eq!(get("half").unwrap().as_whole(), None);
        assert_eq!(
            get("quoted").unwrap().as_whole(),
            None,
            "types are checked, not coerced"
        );
        assert!(get("missing").is_none());
        assert_eq!(get("s").unwrap().as_f64(), None);
    }

    #[test]
    fn records_that_are_not_json_objects_have_no_keys() {
        for record in [
            "[1, 2]",
            "\"text\"",
            "{\"a\": 1",
            "{\"a\": 1} x",
            "",
            "{'a': 1}",
        ] {
            assert!(one(record).get(0, "a").is_none(), "{record}");
        }
        assert!(one("{}").get(0, "a").unwrap().is_none());
    }

    #[test]
    fn records_are_parsed_once_per_array_and_never_taken_for_another_arrays() {
        let array = |text: &str| -> ArrayRef { Arc::new(StringViewArray::from(vec![text])) };
        let (a, b) = (array(r#"{"k": 1}"#), array(r#"{"k": 2}"#));
        let first = records(&[ColumnarValue::Array(Arc::clone(&a))]).unwrap();
        let again = records(&[ColumnarValue::Array(Arc::clone(&a))]).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the same array is parsed once");
        let other = records(&[ColumnarValue::Array(b)]).unwrap();
        assert_eq!(other.get(0, "k").flatten().and_then(Raw::as_whole), Some(2));
        let equal_text = records(&[ColumnarValue::Array(array(r#"{"k": 1}"#))]).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &equal_text),
            "another array is parsed anew"
        );
    }
}
