use std::process::ExitCode;

use clap::Parser;
use lake_runtime::{EXIT_CODES_HELP, LakeArgs, Part, ScopeArgs};

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

    /// Rebuild part I of N of the month-partitioned tables from all of bronze (`--part 0/4`):
    /// the months are split into N ranges of about equal rows; N runs with parts 0/N to N-1/N
    /// run at the same time, and the next plain run finds those tables up to date
    #[arg(long, value_name = "I/N", conflicts_with_all = ["full_refresh", "from", "to"])]
    part: Option<Part>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let scope = cli.scope.resolve::<Cli>();
    let hold = cli.part.map_or(scope.hold(), |p| p.hold());
    lake_runtime::run_job(
        "silver",
        env!("CARGO_PKG_VERSION"),
        &cli.lake,
        hold,
        |run| silver::run(run, scope, cli.part),
    )
    .await
}
