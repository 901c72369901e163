use std::process::ExitCode;

use clap::Parser;
use lake_runtime::{EXIT_CODES_HELP, Hold, LakeArgs, Part};

/// Lands the raw source files under <landing>/<source>/ into bronze Delta tables: every line
/// is either landed as text with its lineage or quarantined with a reason. Objects already
/// landed (same path, size and ETag) are skipped, so re-running is safe.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    lake: LakeArgs,

    /// Land only the landing objects whose stable hash falls in shard I of N (`--shard 0/4`):
    /// N runs with shards 0/N to N-1/N land everything once, at the same time
    #[arg(long, value_name = "I/N")]
    shard: Option<Part>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let hold = cli.shard.map_or(Hold::All, |s| s.hold());
    lake_runtime::run_job(
        "bronze",
        env!("CARGO_PKG_VERSION"),
        &cli.lake,
        hold,
        |run| bronze::run(run, cli.shard),
    )
    .await
}
