//! The fault harness's fixed slice: seeds drawn once, run on every `make test`, on a local lake
//! and on LocalStack (`make chaos SEEDS=N` runs as many as asked; see `lake_tests::harness`).

use lake_tests::harness::world::{Pool, Store};
use lake_tests::harness::{Clean, Mode, run_seed};
use lake_tests::*;

/// Runs `seeds` on `store`; fails naming each failing seed, its schedule and its replay.
fn slice(store: Store, seeds: &[u64]) {
    let work = TempDir::new(&format!("chaos-{}", store.name()));
    let pool = Pool::generate(&work.join("pool"));
    let clean = Clean::make(&store, &pool, work.join("clean"), Mode::default());
    let mut failed = Vec::new();
    for &seed in seeds {
        let dir = work.join(&format!("seed-{seed}"));
        let outcome = run_seed(seed, &store, &pool, &clean, dir, Mode::default());
        eprintln!("{}", outcome.report());
        if !outcome.passed() {
            failed.push(outcome.report());
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_fixed_slice_of_seeds_keeps_every_promise_on_a_local_lake() {
    slice(Store::Local, &[1, 2, 4, 5, 7]);
}

#[test]
fn a_fixed_slice_of_seeds_keeps_every_promise_on_localstack() {
    let Some(s3) = S3::get() else { return };
    slice(Store::S3(s3), &[3, 6]);
}
