//! `lake sql "SELECT …"`: runs SQL over every table of the catalogue, registered under its
//! schema-qualified name (`silver.lastfm_listens`), from the configured lake (local or S3).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::{csv, json, util::pretty};
use datafusion::sql::parser::DFParser;
use lake_runtime::{EXIT_CODES_HELP, Lake, LakeArgs, LakeConfig, session};

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
            ExitCode::FAILURE
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
    }
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
