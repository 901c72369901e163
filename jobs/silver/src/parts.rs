//! Fan-out by month range: `silver --part i/N` rebuilds the i-th of N ranges of months, so
//! that N runs (processes, pods, mapped tasks) rebuild the month-partitioned tables together.
//!
//! The parts of a split read the same data and cut it the same way because the split is
//! planned once: the first part to start writes the plan `<lake>/silver/_splits/<n>.json` with
//! an atomic create (the others read it), holding N, the bronze batch the parts read up to (the
//! lowest consumption mark of any source then: every batch up to it is complete), and the N
//! ranges, cut from the months of the records up to that batch into contiguous ranges of about
//! equal rows (the first open at the start, the last at the end, so the parts cover every month
//! there is or will be). A part that finds the newest plan of its N unfinished by itself (a
//! retry after a crash) carries it out as it is; one that already carried it out, with bronze
//! grown since, plans the next split. A part is a backfill of its range that also records, in
//! the same commit as each table's rows, the transaction `lake.silver.part.<i>.<N>` at the
//! plan's batch. When the N markers of a table hold the same batch, the parts together rebuilt
//! all of it from that batch: the next plain run takes that as the table's state, instead of
//! rebuilding it.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::NaiveDate;
use lake_runtime::{LakeError, Location, Month, Part, Result, Run};
use object_store::{ObjectStoreExt, PutMode, PutOptions};
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

/// A split's plan, `<lake>/silver/_splits/<n>.json`, written once by its first part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Split {
    pub count: u32,
    /// The parts read the bronze batches up to this one.
    pub through_batch: i64,
    /// The days of each part's range (`None`: the part has no month).
    pub ranges: Vec<PartRange>,
}

impl Split {
    /// Cuts the months (with their record counts) for `count` parts reading up to `through`.
    pub(crate) fn cut(counts: &BTreeMap<Month, u64>, count: u32, through_batch: i64) -> Self {
        Self {
            count,
            through_batch,
            ranges: (0..count)
                .map(|index| split(counts, Part { index, count }))
                .collect(),
        }
    }

    /// The range of `part`.
    pub(crate) fn range(&self, part: Part) -> PartRange {
        self.ranges.get(part.index as usize).copied().flatten()
    }
}

/// The lake's split plans.
pub(crate) struct Plans {
    folder: Location,
}

impl Plans {
    pub(crate) fn of(run: &Run) -> Result<Self> {
        Ok(Self {
            folder: run.lake.root().child("silver")?.child("_splits")?,
        })
    }

    /// The newest plan and its number, if any. A plan that cannot be read is an error: the
    /// parts that read it might cut the months differently.
    pub(crate) async fn newest(&self) -> Result<Option<(u64, Split)>> {
        let listed = self.folder.list().await?;
        let numbered = listed.iter().filter_map(|m| {
            let name = self.folder.relative(&m.location);
            let n = name.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((n, m))
        });
        let Some((n, meta)) = numbered.max_by_key(|(n, _)| *n) else {
            return Ok(None);
        };
        Ok(Some((n, self.read(&meta.location).await?)))
    }

    async fn read(&self, path: &object_store::path::Path) -> Result<Split> {
        let url = self.folder.object_url(path);
        let bytes = self
            .folder
            .store()
            .get(path)
            .await
            .map_err(LakeError::store(&url))?
            .bytes()
            .await
            .map_err(LakeError::store(&url))?;
        serde_json::from_slice(&bytes).map_err(|e| LakeError::Config {
            message: format!(
                "{url} is not a split plan ({e}); silver wrote it and its parts read it: delete \
                 it only when no part of its split runs, then run the parts again"
            ),
        })
    }

    /// Writes `plan` as plan number `n` unless another part wrote it first: the plan that
    /// number holds.
    pub(crate) async fn create(&self, n: u64, plan: Split) -> Result<Split> {
        let path = self.folder.file_path(&format!("{n:08}.json"));
        let body = Bytes::from(serde_json::to_vec(&plan).unwrap_or_default());
        let create = PutOptions::from(PutMode::Create);
        match self
            .folder
            .store()
            .put_opts(&path, body.into(), create)
            .await
        {
            Ok(_) => Ok(plan),
            Err(object_store::Error::AlreadyExists { .. }) => self.read(&path).await,
            Err(e) => Err(LakeError::store(self.folder.object_url(&path))(e)),
        }
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
