use std::process::ExitCode;

use clap::Parser;
use lake_runtime::{EXIT_CODES_HELP, LakeArgs};

/// Lands the raw source files under <landing>/<source>/ into bronze Delta tables: every line
/// is either landed as text with its lineage or quarantined with a reason. Objects already
/// landed (same path, size and ETag) are skipped, so re-running is safe.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    lake: LakeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    lake_runtime::run_job("bronze", env!("CARGO_PKG_VERSION"), &cli.lake, bronze::run).await
}
