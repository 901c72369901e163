//! `lake-gen`: landing data shaped like the real sources (Last.fm 1K, Sparkify), at any size,
//! for the default sample (`make sample`), tests and benchmarks. Deterministic for a seed.

mod lastfm;
mod rng;
mod sparkify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    source: Source,
}

#[derive(Subcommand, Debug)]
enum Source {
    /// Last.fm 1K: the plays TSV and userid-profile.tsv, written into OUT (e.g. landing/lastfm)
    Lastfm {
        /// Folder to write into (created if missing)
        out: PathBuf,
        /// Plays to generate (19150868 = the real data set's size)
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Users (at most 1000)
        #[arg(long, default_value_t = 100)]
        users: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of plays written twice (exact duplicates)
        #[arg(long, default_value_t = 0.001)]
        dup_rate: f64,
        /// Share of malformed lines
        #[arg(long, default_value_t = 0.0005)]
        bad_rate: f64,
    },
    /// Sparkify: song_data/ (one JSON song per file) and log_data/ (JSON-lines events), written into OUT (e.g. landing/sparkify)
    Sparkify {
        /// Folder to write into (created if missing)
        out: PathBuf,
        /// Songs in song_data
        #[arg(long, default_value_t = 200)]
        songs: usize,
        /// Events in log_data, over all days
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// Days of logs, from 2018-11-01
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().source {
        Source::Sparkify {
            out,
            songs,
            events,
            users,
            days,
            seed,
        } => {
            let opt = sparkify::Options {
                songs,
                events,
                users,
                days,
                seed,
            };
            match sparkify::generate(&out, &opt) {
                Ok((songs, events)) => {
                    println!(
                        "wrote {songs} songs and {events} events into {}",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("lake-gen: cannot write into {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
        Source::Lastfm {
            out,
            rows,
            users,
            seed,
            dup_rate,
            bad_rate,
        } => {
            let opt = lastfm::Options {
                rows,
                users,
                seed,
                dup_rate,
                bad_rate,
            };
            match lastfm::generate(&out, &opt) {
                Ok(lines) => {
                    println!(
                        "wrote {lines} play lines for {users} users into {}",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("lake-gen: cannot write into {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
