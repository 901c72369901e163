use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lake_runtime::{ClusterArgs, EXIT_CODES_HELP, LakeArgs, ScopeArgs};

/// Computes the gold tables from silver with the SQL in jobs/gold/sql: listening sessions
/// (20-minute rule), the 50 longest sessions and the 10 most-played songs in them, and writes
/// the answer as <lake>/gold/<source>/top_songs.tsv. Tables whose silver inputs have not
/// changed since they were computed are left alone; the others are recomputed in full, each
/// in one commit. A backfill (--from/--to) replaces the days of the daily tables.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    lake: LakeArgs,

    #[command(flatten)]
    scope: ScopeArgs,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// Also write the top-songs TSV to this local file
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cli.out.clone();
    let scope = cli.scope.resolve::<Cli>();
    let hold = scope.hold();
    lake_runtime::run_job("gold", env!("CARGO_PKG_VERSION"), &cli.lake, hold, |run| {
        gold::run(run, scope, out, cli.cluster)
    })
    .await
}
