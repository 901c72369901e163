//! The `lake` tool: `lake sql "SELECT …"` runs SQL over every table of the catalogue,
//! registered under its schema-qualified name (`silver.lastfm_listens`), from the configured
//! lake (local or S3); `lake optimize`, `lake checkpoint` and `lake vacuum` maintain the tables.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::{csv, json, util::pretty};
use datafusion::sql::parser::DFParser;
use std::time::Duration;

use lake_runtime::lease::Lease;
use lake_runtime::maintenance::{self, Task};
use lake_runtime::{EXIT_CODES_HELP, Lake, LakeArgs, LakeConfig, LakeError, session};
use lake_schema::{CATALOGUE, Layer, TableDef};

/// Queries the lake.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    lake: LakeArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs SQL statements and prints the rows of each
    Sql {
        /// The statements, e.g. "SELECT * FROM gold.lastfm_top_songs"
        #[arg(required_unless_present = "file")]
        query: Option<String>,
        /// Read the statements from this file instead
        #[arg(short, long, value_name = "FILE", conflicts_with = "query")]
        file: Option<std::path::PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Compacts small files into larger ones, one commit per table (OPTIMIZE)
    Optimize(Tables),
    /// Writes a Delta checkpoint at each table's latest version
    Checkpoint(Tables),
    /// Deletes data files that no version younger than the retention period uses (VACUUM);
    /// time travel to older versions stops working
    Vacuum {
        #[command(flatten)]
        tables: Tables,
        /// Keep the files of the versions of this many past hours
        #[arg(long, value_name = "HOURS", default_value_t = 168)]
        retain_hours: u64,
        /// List what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// Tables to maintain: qualified names (`silver.lastfm_listens`) or layers (`silver`); all
/// when none is given.
#[derive(clap::Args, Debug)]
struct Tables {
    tables: Vec<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Format {
    /// Aligned table
    Table,
    Csv,
    Tsv,
    /// JSON lines
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<LakeError>() {
                Some(e) => e.exit_code().into(),
                None => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let cfg = LakeConfig::resolve(&cli.lake)?;
    let lake = Lake::open(&cfg).await?;
    let ctx = session();
    for def in lake_schema::CATALOGUE {
        lake.register(&ctx, def).await?;
    }
    match cli.command {
        Command::Sql {
            query,
            file,
            format,
        } => {
            let text = match (query, file) {
                (Some(q), _) => q,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                (None, None) => String::new(),
            };
            let statements = DFParser::parse_sql(&text).context("parsing the SQL")?;
            for (i, statement) in statements.into_iter().enumerate() {
                let n = i + 1;
                let plan = ctx
                    .state()
                    .statement_to_plan(statement)
                    .await
                    .with_context(|| format!("planning statement {n}"))?;
                let df = ctx.execute_logical_plan(plan).await;
                let batches = match df {
                    Ok(df) => df.collect().await,
                    Err(e) => Err(e),
                }
                .with_context(|| format!("running statement {n}"))?;
                print(&batches, format)?;
            }
            Ok(())
        }
        Command::Optimize(tables) => maintain(&lake, &tables, Task::Optimize).await,
        Command::Checkpoint(tables) => maintain(&lake, &tables, Task::Checkpoint).await,
        Command::Vacuum {
            tables,
            retain_hours,
            dry_run,
        } => {
            let retain = Duration::from_secs(retain_hours.saturating_mul(3600));
            maintain(&lake, &tables, Task::Vacuum { retain, dry_run }).await
        }
    }
}

/// Runs `task` on the chosen tables, layer by layer, each layer under the lease of the job
/// that writes it; prints one JSON line per table.
async fn maintain(lake: &Lake, tables: &Tables, task: Task) -> Result<()> {
    let chosen: Vec<&TableDef> = CATALOGUE
        .iter()
        .copied()
        .filter(|d| {
            tables.tables.is_empty()
                || tables
                    .tables
                    .iter()
                    .any(|t| *t == d.qualified_name() || t == d.layer.as_str())
        })
        .collect();
    if let Some(unknown) = tables.tables.iter().find(|t| {
        !CATALOGUE
            .iter()
            .any(|d| **t == d.qualified_name() || *t == d.layer.as_str())
    }) {
        anyhow::bail!(
            "no table or layer '{unknown}' in the catalogue (see `lake sql \"SHOW TABLES\"`)"
        );
    }
    let run_id = format!("maintenance-{}", std::process::id());
    for layer in [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Meta] {
        let defs: Vec<&&TableDef> = chosen.iter().filter(|d| d.layer == layer).collect();
        if defs.is_empty() {
            continue;
        }
        // meta tables are appended to by every job, which Delta lets run beside maintenance
        let lease = match layer {
            Layer::Meta => None,
            _ => Some(Lease::acquire(lake.root(), layer.as_str(), &run_id).await?),
        };
        let result = async {
            for def in defs {
                let done = maintenance::maintain(lake, def, task).await?;
                println!("{}", serde_json::to_string(&done)?);
            }
            anyhow::Ok(())
        }
        .await;
        if let Some(lease) = lease {
            lease.release().await;
        }
        result?;
    }
    Ok(())
}

fn print(batches: &[RecordBatch], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => writeln!(out, "{}", pretty::pretty_format_batches(batches)?)?,
        Format::Csv | Format::Tsv => {
            let delimiter = if matches!(format, Format::Csv) {
                b','
            } else {
                b'\t'
            };
            let mut w = csv::WriterBuilder::new()
                .with_delimiter(delimiter)
                .build(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = json::LineDelimitedWriter::new(&mut out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
        }
    }
    Ok(())
}
