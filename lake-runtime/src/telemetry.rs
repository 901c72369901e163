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
    quiet_caught_panics();
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// deltalake's writer aborts a file whose upload failed as it completed, and catches the panic
/// object_store's `BufWriter::abort` raises for it by design (deltalake-core's
/// `upload_parquet_file`, which then warns and returns the upload's error). The default hook
/// would still print that caught panic and its backtrace as if the job had crashed; it is a
/// one-line warning instead. Every other panic reaches the default hook.
fn quiet_caught_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_buffered_writer = info.location().is_some_and(|l| {
            l.file().contains("object_store") && l.file().ends_with("buffered.rs")
        });
        let shut_down = info.payload().downcast_ref::<&str>() == Some(&"Already shut down");
        if in_buffered_writer && shut_down {
            let at = info.location().map(|l| l.to_string()).unwrap_or_default();
            tracing::warn!("an upload that failed as it completed could not be aborted ({at})");
        } else {
            default(info)
        }
    }));
}
