//! SQL functions the silver rules need and DataFusion lacks in strict form:
//!
//! - `parse_utc_timestamp(text)`: a UTC timestamp from exactly `YYYY-MM-DDTHH:MM:SSZ`, NULL for
//!   anything else (other layouts, impossible dates such as `2009-02-30`, hour 24, leap seconds).
//! - `is_blank(text)`: true when the text is NULL, empty, or only (Unicode) white space.
//! - `try_parse_date(text, format)`: a date parsed with a chrono/strftime format, NULL when it
//!   does not parse.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "parse_utc_timestamp",
        vec![DataType::Utf8],
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Volatility::Immutable,
        Arc::new(|args| {
            let text = strings(args, 0)?;
            let out: TimestampMicrosecondArray = text
                .iter()
                .map(|v| v.and_then(parse_utc_seconds).map(|s| s * 1_000_000))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out.with_timezone("UTC"))))
        }),
    ));
    ctx.register_udf(create_udf(
        "is_blank",
        vec![DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(|args| {
            let text = strings(args, 0)?;
            let out: BooleanArray = text
                .iter()
                .map(|v| Some(v.is_none_or(|s| s.chars().all(char::is_whitespace))))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
    ctx.register_udf(create_udf(
        "try_parse_date",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(|args| {
            let text = strings(args, 0)?;
            let format = strings(args, 1)?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            let out: Date32Array = text
                .iter()
                .zip(format.iter())
                .map(|(v, f)| {
                    let date = NaiveDate::parse_from_str(v?.trim(), f?).ok()?;
                    i32::try_from((date - epoch).num_days()).ok()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
}

/// Argument `i` as a UTF-8 array with one row per input row.
fn strings(args: &[ColumnarValue], i: usize) -> Result<StringArray> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let array: ArrayRef = cast(&arrays[i], &DataType::Utf8)?;
    Ok(array
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::new_null(array.len())))
}

/// Seconds since the epoch for exactly `YYYY-MM-DDTHH:MM:SSZ`, else `None`.
pub fn parse_utc_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (h, m, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if sec > 59 {
        return None;
    }
    let time = date.and_hms_opt(h, m, sec)?;
    Some(NaiveDateTime::and_utc(&time).timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_strict_layout_parses() {
        assert_eq!(
            parse_utc_seconds("2009-05-04T23:08:57Z"),
            Some(1_241_478_537)
        );
        assert_eq!(parse_utc_seconds("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "2009-13-45T99:61:00Z",
            "2009-02-29T00:00:00Z",
            "2009-05-04 23:08:57Z",
            "2009-05-04T23:08:57",
            "2009-05-04T23:08:57+00:00",
            "2009-5-04T23:08:57Z",
            "2009-05-04T24:00:00Z",
            "2009-05-04T23:59:60Z",
            " 2009-05-04T23:08:57Z",
            "２００９-05-04T23:08:57Z",
            "",
        ] {
            assert_eq!(parse_utc_seconds(bad), None, "{bad}");
        }
    }
}
