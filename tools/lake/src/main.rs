//! The `lake` tool: SQL over every table of the lake, the table listing, and table maintenance.
//! The work is in the library ([`lake`]); this file reads the command line and prints.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::{csv, json, util::pretty};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::SessionContext;
use lake_runtime::config::parse_location;
use lake_runtime::lease::Hold;
use lake_runtime::maintenance::{self, Task};
use lake_runtime::{
    ClusterArgs, Compute, EXIT_CODES_HELP, Lake, LakeArgs, LakeConfig, LakeError, Location,
    catalog, session,
};
use lake_schema::{CATALOGUE, Layer, TableDef};

/// Queries and maintains the lake. Tables are named `<layer>.<source>_<table>`
/// (`silver.lastfm_listens`); `lake tables` lists them.
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
    /// Runs SQL: the statements given, those of a file, those on stdin, or an interactive shell
    /// when stdin is a terminal. A table as it was: `gold.lastfm_top_songs@v3` (a version) or
    /// `@2026-11-22T01:00:00Z` / `@2026-11-22` (the version current then)
    Sql {
        /// The statements, e.g. "SELECT * FROM gold.lastfm_top_songs ORDER BY rank"
        query: Option<String>,
        /// Read the statements from this file
        #[arg(short, long, value_name = "FILE", conflicts_with = "query")]
        file: Option<PathBuf>,
        /// How to print rows [default: table on a terminal, tsv otherwise]
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write the rows of the last statement to this file or object-store path instead,
        /// as Parquet (`.parquet`) or CSV (`.csv`)
        #[arg(short, long, value_name = "PATH")]
        output: Option<String>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Lists every table: location, version, rows, last commit and the run that made it
    Tables {
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Shows a table's description, location, partitions and columns
    Describe {
        /// Qualified name, e.g. silver.lastfm_listens
        table: String,
    },
    /// Writes the lake's report again, <lake>/gold/report/index.html (gold writes it on every
    /// run): one self-contained HTML file with the state of the lake and a chart per question
    Report {
        /// Also write it to this local file
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
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
    /// Runs a process of an Apache DataFusion Ballista cluster for `gold --scheduler` and
    /// `lake sql --scheduler`: the scheduler, or an executor (which reads the lake's files)
    #[cfg(feature = "cluster")]
    #[command(subcommand)]
    Cluster(Cluster),
}

#[cfg(feature = "cluster")]
#[derive(Subcommand, Debug)]
enum Cluster {
    /// The scheduler: plans the queries clients send and hands their tasks to executors
    Scheduler {
        /// Address to listen on
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: std::net::SocketAddr,
    },
    /// An executor: registers with the scheduler and runs tasks, reading the lake's files
    Executor {
        /// The scheduler, host:port
        #[arg(long, value_name = "HOST:PORT", default_value = "localhost:50050")]
        scheduler: String,
        /// Address to listen on
        #[arg(long, default_value = "0.0.0.0")]
        bind_host: String,
        /// The address the scheduler and other executors reach this one at [default: the
        /// bind host, or this machine's name when it binds every address]
        #[arg(long)]
        external_host: Option<String>,
        /// Port of its Arrow Flight service (results and shuffles)
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Port of its gRPC service (tasks)
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks it runs at once [default: its cores]
        #[arg(long, default_value_t = 0)]
        tasks: usize,
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
    // every table of the catalogue by name, and plain files by path too:
    // SELECT * FROM 'out/top.parquet'
    let ctx = session(&cfg).enable_url_table();
    catalog::attach(&ctx, &lake);
    match cli.command {
        Command::Sql {
            query,
            file,
            format,
            output,
            cluster,
        } => {
            let ctx = match cluster.scheduler {
                None => ctx,
                Some(_) => {
                    let compute = Compute::new(&cfg, &cluster)?;
                    let ctx = compute.session().await?;
                    catalog::attach(&ctx, &compute.lake(&lake));
                    ctx
                }
            };
            let format = format.unwrap_or_else(default_format);
            let text = match (query, file) {
                (Some(q), _) => q,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                (None, None) if std::io::stdin().is_terminal() => {
                    return shell(&ctx, format).await;
                }
                (None, None) => std::io::read_to_string(std::io::stdin())?,
            };
            match output {
                None => lake::run_sql(&ctx, &text, |b| print(&b, format)).await,
                Some(path) => {
                    let mut last = Vec::new();
                    lake::run_sql(&ctx, &text, |b| {
                        last = b;
                        Ok(())
                    })
                    .await?;
                    write_output(&cfg, &ctx, last, &path).await
                }
            }
        }
        Command::Tables { format } => {
            let batch = lake::tables(&lake, &ctx).await?;
            print(&[batch], format.unwrap_or_else(default_format))
        }
        Command::Describe { table } => {
            let (header, columns) = lake::describe(&lake, &table)?;
            println!("{header}");
            print(&[columns], default_format())
        }
        Command::Report { out } => {
            let (url, html) = lake_report::write(&lake, &ctx).await?;
            println!("{url}");
            if let Some(path) = out {
                std::fs::write(&path, html)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(())
        }
        Command::Optimize(tables) => maintain(&cfg, &lake, &tables, Task::Optimize).await,
        Command::Checkpoint(tables) => maintain(&cfg, &lake, &tables, Task::Checkpoint).await,
        Command::Vacuum {
            tables,
            retain_hours,
            dry_run,
        } => {
            let retain = Duration::from_secs(retain_hours.saturating_mul(3600));
            maintain(&cfg, &lake, &tables, Task::Vacuum { retain, dry_run }).await
        }
        #[cfg(feature = "cluster")]
        Command::Cluster(process) => cluster(&cfg, process).await,
    }
}

/// Runs a process of the cluster until it is stopped.
#[cfg(feature = "cluster")]
async fn cluster(cfg: &LakeConfig, process: Cluster) -> Result<()> {
    use lake_runtime::cluster::{self, ExecutorArgs};
    lake_runtime::telemetry::init(cfg.log_format);
    match process {
        Cluster::Scheduler { bind } => cluster::scheduler(bind).await?,
        Cluster::Executor {
            scheduler,
            bind_host,
            external_host,
            port,
            grpc_port,
            tasks,
        } => {
            let (host, scheduler_port) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
                .ok_or_else(|| anyhow::anyhow!("--scheduler {scheduler} is not host:port"))?;
            let args = ExecutorArgs {
                scheduler: (host, scheduler_port),
                external_host: external_host.unwrap_or_else(|| match bind_host.as_str() {
                    "0.0.0.0" | "::" => lake_runtime::env::host_name(),
                    one => one.to_string(),
                }),
                bind_host,
                port,
                grpc_port,
                tasks,
            };
            cluster::executor(cfg, args).await?
        }
    }
    Ok(())
}

fn default_format() -> Format {
    if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Tsv
    }
}

/// The interactive shell: statements end with `;`, errors are printed and the shell goes on;
/// `\q`, `exit` or Ctrl-D leaves. History is kept in `~/.lake_history`.
async fn shell(ctx: &SessionContext, format: Format) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".lake_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "lake SQL shell: tables are listed by SHOW TABLES; end statements with ';', leave with \\q"
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "lake> "
        } else {
            "  ..> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && matches!(line.trim(), "\\q" | "exit" | "quit") {
                    break;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if line.trim_end().ends_with(';') {
                    let _ = editor.add_history_entry(buffer.trim());
                    if let Err(e) = lake::run_sql(ctx, &buffer, |b| print(&b, format)).await {
                        eprintln!("error: {e:#}");
                    }
                    buffer.clear();
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

/// Writes `batches` to a local file or an object-store path, as Parquet or CSV by extension.
async fn write_output(
    cfg: &LakeConfig,
    ctx: &SessionContext,
    batches: Vec<RecordBatch>,
    path: &str,
) -> Result<()> {
    let (dir, name) = path.rsplit_once('/').unwrap_or((".", path));
    let folder = Location::open(&parse_location("output", dir)?, cfg).await?;
    let url = folder.url().join(name)?;
    if !folder.is_local() {
        ctx.register_object_store(folder.url(), folder.store().clone());
    }
    let df = ctx.read_batches(batches)?;
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    let target = if folder.is_local() {
        url.to_file_path()
            .map_err(|_| anyhow::anyhow!("{url} is not a local path"))?
            .display()
            .to_string()
    } else {
        url.to_string()
    };
    if name.ends_with(".parquet") {
        df.write_parquet(&target, options, None).await?;
    } else if name.ends_with(".csv") {
        df.write_csv(&target, options, None).await?;
    } else {
        return Err(LakeError::Config {
            message: format!("--output {path}: name a .parquet or a .csv file"),
        }
        .into());
    }
    eprintln!("written to {url}");
    Ok(())
}

/// Runs `task` on the chosen tables, layer by layer, each layer under the lease of the job
/// that writes it; prints one JSON line per table.
async fn maintain(cfg: &LakeConfig, lake: &Lake, tables: &Tables, task: Task) -> Result<()> {
    let named = |d: &TableDef, t: &str| t == d.qualified_name() || t == d.layer.as_str();
    if let Some(unknown) = tables
        .tables
        .iter()
        .find(|t| !CATALOGUE.iter().any(|d| named(d, t)))
    {
        anyhow::bail!("no table or layer '{unknown}' in the catalogue; `lake tables` lists them");
    }
    let chosen: Vec<&TableDef> = CATALOGUE
        .iter()
        .copied()
        .filter(|d| tables.tables.is_empty() || tables.tables.iter().any(|t| named(d, t)))
        .collect();
    // unique: in a container every process may be pid 1
    let run_id = format!(
        "maintenance-{}",
        lake_runtime::run::new_run_id(chrono::Utc::now())
    );
    for layer in [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Meta] {
        let defs: Vec<&&TableDef> = chosen.iter().filter(|d| d.layer == layer).collect();
        if defs.is_empty() {
            continue;
        }
        // meta tables are appended to by every job, which Delta lets run beside maintenance
        let lease = match layer {
            Layer::Meta => None,
            _ => Some(
                lake_runtime::hold_lease(lake, layer.as_str(), Hold::All, &run_id, cfg.lease_ttl)
                    .await?,
            ),
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
            // TSV as the top-songs deliverable writes it: tab-separated, nothing quoted
            let builder = match format {
                Format::Csv => csv::WriterBuilder::new(),
                _ => csv::WriterBuilder::new()
                    .with_delimiter(b'\t')
                    .with_quote_style(csv::QuoteStyle::Never),
            };
            let mut w = builder.build(&mut out);
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
