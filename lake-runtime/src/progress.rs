//! A progress line on long work (bytes landed, tables built), drawn on stderr only when stderr
//! is a terminal and the logs are text; silent under an orchestrator, in CI and with
//! `--log-format json`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
/// A progress line is on screen (a log line must clear it first).
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Clears a progress line on screen, so that a log line written next starts on a clean line;
/// the progress line is drawn again on its next step.
pub fn clear_for_log() {
    if SHOWN.swap(false, Ordering::Relaxed) {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// Turns progress lines on when stderr is a terminal (called by the logging set-up; `text`
/// says the logs are human-readable).
pub fn init(text: bool) {
    ENABLED.store(text && std::io::stderr().is_terminal(), Ordering::Relaxed);
}

/// What a progress line counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Bytes,
    Steps,
}

/// A progress line; a no-op when progress is off. Cheap to clone and to advance from any thread.
#[derive(Debug, Clone, Default)]
pub struct Progress(Option<Arc<Line>>);

#[derive(Debug)]
struct Line {
    label: String,
    total: u64,
    unit: Unit,
    done: AtomicU64,
    started: Instant,
    drawn: Mutex<Option<Instant>>,
}

impl Progress {
    pub fn new(label: &str, total: u64, unit: Unit) -> Self {
        if !ENABLED.load(Ordering::Relaxed) {
            return Self(None);
        }
        Self(Some(Arc::new(Line {
            label: label.to_string(),
            total,
            unit,
            done: AtomicU64::new(0),
            started: Instant::now(),
            drawn: Mutex::new(None),
        })))
    }

    pub fn inc(&self, n: u64) {
        if let Some(line) = &self.0 {
            line.done.fetch_add(n, Ordering::Relaxed);
            line.draw(false);
        }
    }

    /// Clears the line.
    pub fn finish(&self) {
        if let Some(line) = &self.0 {
            line.draw(true);
            clear_for_log();
        }
    }
}

impl Line {
    fn draw(&self, force: bool) {
        let Ok(mut drawn) = self.drawn.lock() else {
            return;
        };
        let now = Instant::now();
        if !force && drawn.is_some_and(|t| now - t < Duration::from_millis(100)) {
            return;
        }
        *drawn = Some(now);
        SHOWN.store(true, Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed).min(self.total);
        let _ = write!(std::io::stderr(), "\r\x1b[2K{}", render(self, done, now));
    }
}

fn render(line: &Line, done: u64, now: Instant) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(line.total).unwrap_or(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect();
    let amount = match line.unit {
        Unit::Bytes => format!("{} / {}", bytes(done), bytes(line.total)),
        Unit::Steps => format!("{done} / {}", line.total),
    };
    let secs = (now - line.started).as_secs_f64();
    format!("{} [{bar}] {amount} {secs:.0} s", line.label)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_shows_the_share_done_and_the_amounts() {
        let line = Line {
            label: "bronze lastfm".into(),
            total: 2_500_000,
            unit: Unit::Bytes,
            done: AtomicU64::new(0),
            started: Instant::now(),
            drawn: Mutex::new(None),
        };
        let text = render(&line, 1_250_000, line.started);
        assert_eq!(
            text,
            "bronze lastfm [###############---------------] 1.2 MB / 2.5 MB 0 s"
        );
        assert!(
            Progress::new("off", 1, Unit::Steps).0.is_none(),
            "off unless a terminal"
        );
    }
}
