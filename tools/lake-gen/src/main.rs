//! `lake-gen`: landing data shaped like the real sources (Last.fm 1K, Sparkify, Deezer, eventsim), at any
//! size, for the default sample (`make sample`), tests and benchmarks. Deterministic for a seed.

mod deezer;
mod eventsim;
mod lastfm;
mod rng;
mod sparkify;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
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
        /// Spread the plays over this many months from the start (one month partition each)
        /// instead of the real data's four years and a half
        #[arg(long)]
        months: Option<u32>,
        /// The plays' first day (YYYY-MM-DD; default 2005-02-14, as in the real data), e.g.
        /// the day after earlier data to make new plays
        #[arg(long, value_parser = day)]
        start: Option<NaiveDate>,
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
    /// Deezer: daily logs listen-YYYYMMDD.log (sng_id|user_id|country), written into OUT (e.g. landing/deezer)
    Deezer {
        /// Folder to write into (created if missing)
        out: PathBuf,
        /// The first day (YYYY-MM-DD)
        #[arg(long, default_value = "2021-12-01", value_parser = day)]
        start: NaiveDate,
        /// Days of logs
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Lines a day (streams, and the corrupt lines among them)
        #[arg(long, default_value_t = 100_000)]
        streams: u64,
        #[arg(long, default_value_t = 20_000)]
        users: u64,
        #[arg(long, default_value_t = 50_000)]
        songs: u64,
        /// Share of corrupt lines, of the kinds the exercise's 2-million-line file has
        #[arg(long, default_value_t = 0.001)]
        bad_rate: f64,
        /// A day without a log (YYYY-MM-DD); repeat for more
        #[arg(long, value_parser = day)]
        skip_day: Vec<NaiveDate>,
        /// Write listen-YYYYMMDD.log.gz
        #[arg(long)]
        gzip: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// eventsim: the four streams as Fluentd writes them (<stream>/YYYY/MM/DD/HH_0.json), written into OUT (e.g. landing/eventsim)
    Eventsim {
        /// Folder to write into (created if missing)
        out: PathBuf,
        /// The first day (YYYY-MM-DD)
        #[arg(long, default_value = "2022-04-11", value_parser = day)]
        start: NaiveDate,
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 200)]
        users: u32,
        /// Sessions a user starts a day, on average
        #[arg(long, default_value_t = 1.0)]
        sessions: f64,
        /// Share of lines delivered twice
        #[arg(long, default_value_t = 0.01)]
        dup_rate: f64,
        /// Share of broken lines (cut off, a string ts, no sessionId), in addition to the events
        #[arg(long, default_value_t = 0.001)]
        bad_rate: f64,
        /// Write .json.gz
        #[arg(long)]
        gzip: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write what silver and gold.eventsim_activity_daily must hold, as JSON, to FILE
        #[arg(long)]
        expected: Option<PathBuf>,
    },
}

fn day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a day (YYYY-MM-DD)"))
}

/// Reports what `generate` wrote, or why it could not.
fn report<T>(
    out: &std::path::Path,
    written: std::io::Result<T>,
    what: impl Fn(T) -> String,
) -> ExitCode {
    match written {
        Ok(n) => {
            println!("wrote {} into {}", what(n), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lake-gen: cannot write into {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
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
            report(&out, sparkify::generate(&out, &opt), |(songs, events)| {
                format!("{songs} songs and {events} events")
            })
        }
        Source::Lastfm {
            out,
            rows,
            users,
            seed,
            dup_rate,
            bad_rate,
            months,
            start,
        } => {
            let opt = lastfm::Options {
                rows,
                users,
                seed,
                dup_rate,
                bad_rate,
                months,
                start: start.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()),
            };
            report(&out, lastfm::generate(&out, &opt), |lines| {
                format!("{lines} play lines for {users} users")
            })
        }
        Source::Deezer {
            out,
            start,
            days,
            streams,
            users,
            songs,
            bad_rate,
            skip_day,
            gzip,
            seed,
        } => {
            let opt = deezer::Options {
                start,
                days,
                streams,
                users,
                songs,
                bad_rate,
                skip: skip_day,
                gzip,
                seed,
            };
            report(&out, deezer::generate(&out, &opt), |lines| {
                format!("{lines} log lines over {days} days")
            })
        }
        Source::Eventsim {
            out,
            start,
            days,
            users,
            sessions,
            dup_rate,
            bad_rate,
            gzip,
            seed,
            expected,
        } => {
            let opt = eventsim::Options {
                start,
                days,
                users,
                sessions,
                dup_rate,
                bad_rate,
                gzip,
                seed,
            };
            let written = eventsim::generate(&out, &opt).and_then(|e| {
                if let Some(file) = &expected {
                    let text = serde_json::to_string_pretty(&e).map_err(io::Error::other)?;
                    std::fs::write(file, text)?;
                }
                Ok(e)
            });
            report(&out, written, |e| {
                format!("{} lines of {} users over {days} days", e.lines, users)
            })
        }
    }
}
