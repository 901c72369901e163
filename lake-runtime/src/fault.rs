//! A test hook that crashes or pauses a job at a named point, so that tests can prove a re-run
//! after a crash, or a run that stalled while another took its lease over, leaves the lake as
//! one clean run would. It is off unless `LAKE_TEST_FAULT` names the point: `<point>` aborts
//! there, which skips every destructor and flush, as SIGKILL does; `pause:<point>` stops the
//! process there with SIGSTOP, as a long pause does, until the test sends SIGCONT.

use crate::env::LAKE_TEST_FAULT;

/// Aborts the process when `LAKE_TEST_FAULT` equals `name`; stops it when it is `pause:<name>`.
pub fn point(name: &str) {
    let Ok(fault) = std::env::var(LAKE_TEST_FAULT) else {
        return;
    };
    if fault == name {
        eprintln!("{LAKE_TEST_FAULT}={name}: aborting here");
        std::process::abort();
    }
    if fault.strip_prefix("pause:") == Some(name) {
        eprintln!("{LAKE_TEST_FAULT}={fault}: pausing here");
        let me = std::process::id().to_string();
        // the whole process stops, its lease's renewals too, until SIGCONT
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &me])
            .status();
        eprintln!("{LAKE_TEST_FAULT}={fault}: resumed");
    }
}
