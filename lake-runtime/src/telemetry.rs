//! Logging set-up: human-readable text on stderr by default, JSON lines with `--log-format json`.
//! The level comes from `LAKE_LOG` (e.g. `debug`, or `info,deltalake=debug`), default `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Our crates (and the cluster processes' Ballista) at `info`, the libraries below them at `warn`.
const DEFAULT_FILTER: &str = "warn,lake_runtime=info,bronze=info,silver=info,gold=info,ballista_scheduler=info,ballista_executor=info";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env(crate::env::LAKE_LOG)
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| {
            crate::progress::clear_for_log();
            std::io::stderr()
        })
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    crate::progress::init(format == LogFormat::Text);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
