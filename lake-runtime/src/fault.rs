//! A test hook that crashes a job at a named point, so that tests can prove a re-run after a
//! crash leaves the lake as one clean run would. It is off unless `LAKE_TEST_FAULT` names the
//! point; the crash is an abort, which skips every destructor and flush, as SIGKILL does.

use crate::env::LAKE_TEST_FAULT;

/// Aborts the process when `LAKE_TEST_FAULT` equals `name`.
pub fn point(name: &str) {
    if std::env::var(LAKE_TEST_FAULT).is_ok_and(|v| v == name) {
        eprintln!("{LAKE_TEST_FAULT}={name}: aborting here");
        std::process::abort();
    }
}
