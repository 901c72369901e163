use std::process::ExitCode;

use clap::Parser;
use lake_runtime::{EXIT_CODES_HELP, LakeArgs};

/// Builds the silver tables from bronze: casts and validates every bronze row, sends rows that
/// break a rule to quarantine with the reason, counts exact duplicate plays once, and replaces
/// each silver table in one commit. Re-running gives the same tables.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    lake: LakeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    lake_runtime::run_job("silver", env!("CARGO_PKG_VERSION"), &cli.lake, silver::run).await
}
