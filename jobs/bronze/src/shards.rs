//! Bronze fanned out: `--shard i/N` lands the landing objects whose stable hash falls in shard
//! i, so N runs land a landing zone together, each object exactly once.
//!
//! Concurrent runs must not share batch numbers, and each must know which claimed batches are
//! its own to finish after a crash: the lake's batch registry gives each batch a number and a
//! *lane* (`lake.bronze.shard.<i>.<N>` for a shard; [`lake_runtime::batches`]), and each bronze
//! table records, lane by lane, the newest batch it holds.

use lake_runtime::Part;
use lake_runtime::functions::fnv1a;

/// Whether the landing object `source/relative` belongs to `shard` (all do without one): by
/// FNV-1a 64 of its path below the landing root, which does not change between runs.
pub fn in_shard(source: &str, relative: &str, shard: Option<Part>) -> bool {
    let Some(p) = shard else { return true };
    let h = fnv1a(source.bytes().chain([b'/']).chain(relative.bytes()));
    h % u64::from(p.count) == u64::from(p.index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lake_runtime::lane;

    #[test]
    fn every_object_falls_in_exactly_one_shard_and_shards_are_about_even() {
        let part = |index| Some(Part { index, count: 4 });
        let mut sizes = [0; 4];
        for n in 0..4000 {
            let rel = format!("userid-timestamp-artid-artname-traid-traname.{n}.tsv");
            let owners: Vec<u32> = (0..4)
                .filter(|&i| in_shard("lastfm", &rel, part(i)))
                .collect();
            assert_eq!(owners.len(), 1, "{rel}: {owners:?}");
            sizes[owners[0] as usize] += 1;
            assert!(in_shard("lastfm", &rel, None));
        }
        assert!(sizes.iter().all(|&s| (800..1200).contains(&s)), "{sizes:?}");
        assert_eq!(lane(None), "lake.bronze");
        assert_eq!(lane(part(2)), "lake.bronze.shard.2.4");
    }
}
