use std::process::ExitCode;

use clap::Parser;
use lake_runtime::{EXIT_CODES_HELP, LakeArgs, ScopeArgs};

/// Builds the silver tables from bronze: casts and validates every bronze row, sends rows that
/// break a rule to quarantine with the reason, counts exact duplicate plays once. Only what
/// bronze added since the last run is processed: the months new plays fall in are replaced,
/// small dimensions rebuilt, new rejects appended; each table changes in one commit.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    lake: LakeArgs,

    #[command(flatten)]
    scope: ScopeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let scope = cli.scope.resolve::<Cli>();
    lake_runtime::run_job("silver", env!("CARGO_PKG_VERSION"), &cli.lake, |run| {
        silver::run(run, scope)
    })
    .await
}
