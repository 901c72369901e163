//! Fan-out by month range: `silver --part i/N` rebuilds the i-th of N ranges of months, so
//! that N runs (processes, pods, mapped tasks) rebuild the month-partitioned tables together.
//!
//! Every part plans the same split from bronze: the months its records fall in, with their
//! counts, cut into N contiguous ranges of about equal rows (the first open at the start, the
//! last at the end, so the parts cover every month there is or will be). A part is a backfill
//! of its range that also records, in the same commit as each table's rows, the transaction
//! `lake.silver.part.<i>.<N>` at the newest bronze batch it read. When the N markers of a table
//! hold the same batch, the parts together rebuilt all of it from that batch: the next plain
//! run takes that as the table's state, instead of rebuilding it. The split's N is noted in
//! `<lake>/silver/_parts.json` for that run to find the markers.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use lake_runtime::{LakeError, Location, Month, Part, Result, Run};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

/// The transaction a part records on the tables it rebuilt.
pub(crate) fn part_txn(part: Part) -> String {
    format!("lake.silver.part.{}.{}", part.index, part.count)
}

/// The days of a part's months: `None` when the split leaves it no month.
pub(crate) type PartRange = Option<(Option<NaiveDate>, Option<NaiveDate>)>;

/// Cuts the months (with their record counts) into `part.count` contiguous ranges of about
/// equal counts and returns the days of range `part.index`; the first range is open at the
/// start and the last at the end.
pub(crate) fn split(counts: &BTreeMap<Month, u64>, part: Part) -> PartRange {
    let n = u128::from(part.count);
    let total: u128 = counts.values().map(|&c| u128::from(c)).sum();
    // boundary k (0 < k < n): the first month whose middle record lies past k/n of them all;
    // `None` past the last month
    let boundary = |k: u128| -> Option<Month> {
        let mut before = 0u128;
        for (&month, &c) in counts {
            let c = u128::from(c);
            if (2 * before + c) * n >= 2 * k * total {
                return Some(month);
            }
            before += c;
        }
        None
    };
    let k = u128::from(part.index);
    let start = (k > 0).then(|| boundary(k));
    let end = (k + 1 < n).then(|| boundary(k + 1));
    match (start, end) {
        // the range starts past the last month: nothing is left for it
        (Some(None), _) => None,
        (Some(Some(a)), Some(Some(b))) if a >= b => None,
        (start, end) => Some((
            start.flatten().map(Month::first_day),
            end.flatten().and_then(|b| b.first_day().pred_opt()),
        )),
    }
}

/// What `<lake>/silver/_parts.json` says: the last split's count and newest bronze batch.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Split {
    pub count: u32,
    pub through_batch: i64,
}

fn split_file(run: &Run) -> Result<(Location, object_store::path::Path)> {
    let silver = run.lake.root().child("silver")?;
    let path = silver.file_path("_parts.json");
    Ok((silver, path))
}

/// Notes the split a part belongs to (each part writes the same).
pub(crate) async fn note_split(run: &Run, split: &Split) -> Result<()> {
    let (silver, path) = split_file(run)?;
    let body = serde_json::to_vec(split).unwrap_or_default();
    silver
        .store()
        .put(&path, body.into())
        .await
        .map_err(LakeError::store(silver.object_url(&path)))?;
    Ok(())
}

/// The last split noted, if any.
pub(crate) async fn last_split(run: &Run) -> Result<Option<Split>> {
    let (silver, path) = split_file(run)?;
    let url = silver.object_url(&path);
    match silver.store().get(&path).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(LakeError::store(&url))?;
            // an unreadable note only costs the next run a rebuild
            Ok(serde_json::from_slice(&bytes).ok())
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(LakeError::store(url)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(s: &str) -> Month {
        let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").unwrap_or_default();
        Month::of(d)
    }

    fn day(s: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
    }

    fn part(index: u32, count: u32) -> Part {
        Part { index, count }
    }

    fn months(counts: &[(&str, u64)]) -> BTreeMap<Month, u64> {
        counts.iter().map(|&(m, c)| (month(m), c)).collect()
    }

    /// Every part of a split of `n`.
    fn all(counts: &BTreeMap<Month, u64>, n: u32) -> Vec<PartRange> {
        (0..n).map(|i| split(counts, part(i, n))).collect()
    }

    #[test]
    fn parts_are_contiguous_balanced_and_open_at_both_ends() {
        let counts = months(&[
            ("2008-11", 10),
            ("2008-12", 10),
            ("2009-01", 10),
            ("2009-02", 10),
        ]);
        assert_eq!(
            all(&counts, 2),
            [
                Some((None, day("2008-12-31"))),
                Some((day("2009-01-01"), None))
            ]
        );
        assert_eq!(split(&counts, part(0, 1)), Some((None, None)));
        // more parts than months: the ones left over get nothing
        let six = all(&counts, 6);
        assert_eq!(six.iter().filter(|p| p.is_some()).count(), 4, "{six:?}");
        assert_eq!(six[0], Some((None, day("2008-11-30"))));
        assert_eq!(six.last(), Some(&Some((day("2009-02-01"), None))));
    }

    #[test]
    fn a_heavy_month_gets_a_part_of_its_own() {
        let counts = months(&[("2008-11", 1), ("2008-12", 100), ("2009-01", 1)]);
        assert_eq!(
            all(&counts, 3),
            [
                Some((None, day("2008-11-30"))),
                Some((day("2008-12-01"), day("2008-12-31"))),
                Some((day("2009-01-01"), None))
            ]
        );
        assert_eq!(split(&BTreeMap::new(), part(0, 2)), Some((None, None)));
        assert_eq!(split(&BTreeMap::new(), part(1, 2)), None);
    }
}
