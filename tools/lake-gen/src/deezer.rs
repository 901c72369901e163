//! Deezer-shaped daily logs: `listen-YYYYMMDD.log`, one stream a line, `sng_id|user_id|country`.
//!
//! Shaped like the exercise's data and its known corruptions: users with a home country (most in
//! a dozen large countries, a few everywhere) who stream from abroad now and then, each country
//! with its own Zipf popularity over the catalogue plus a global one, heavy and light users, ids
//! beyond 2^31, leading zeros, every third day written with ` | ` separators and CRLF line ends
//! (as the official sample), a BOM on the first day, and a share of the corrupt lines of the
//! 2-million-line file: glued ids, two records on a line, blank lines, commas for pipes,
//! `GBGBGB`, negative ids, a space, `null` or nothing as user id, lower-case and unknown
//! countries, an id too large for 64 bits, a trailing pipe.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::NaiveDate;

use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct Options {
    /// The first day.
    pub start: NaiveDate,
    pub days: u32,
    /// Streams a day (corrupt lines included).
    pub streams: u64,
    pub users: u64,
    pub songs: u64,
    /// Share of corrupt lines.
    pub bad_rate: f64,
    /// Days without a log.
    pub skip: Vec<NaiveDate>,
    /// Write `.log.gz` instead of `.log`.
    pub gzip: bool,
    pub seed: u64,
}

/// The 249 ISO 3166-1 alpha-2 codes.
pub const ISO_3166: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Where most users live.
const BIG: [&str; 12] = [
    "FR", "DE", "GB", "BE", "NL", "ES", "IT", "US", "BR", "MX", "PL", "CA",
];

/// The catalogue and the listeners.
struct World {
    /// User id and home country (an index into `ISO_3166`) of each user.
    users: Vec<(u64, u16)>,
    /// Cumulative activity of the users, for drawing who streams.
    activity: Vec<f64>,
    songs: u64,
    /// Cumulative Zipf weights over song ranks: a country's own chart (steep) and the global
    /// one (flat).
    steep: Vec<f64>,
    flat: Vec<f64>,
}

/// Ids spread over [1, `range`] without repeats: `i` times a multiplier prime to `range`.
fn spread(i: u64, multiplier: u64, range: u64) -> u64 {
    (i as u128 * multiplier as u128 % range as u128) as u64 + 1
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

fn draw(cdf: &[f64], rng: &mut Rng) -> usize {
    let u = rng.unit();
    cdf.partition_point(|c| *c < u)
        .min(cdf.len().saturating_sub(1))
}

impl World {
    fn new(rng: &mut Rng, opt: &Options) -> Self {
        let home_weights = cumulative(
            ISO_3166
                .iter()
                .map(|c| if BIG.contains(c) { 8.0 } else { 0.02 }),
        );
        let users = (0..opt.users.max(1))
            // ids up to 10^10: beyond 2^31, as Deezer's
            .map(|i| {
                (
                    spread(i, 7_919_999_981, 10_000_000_000),
                    draw(&home_weights, rng) as u16,
                )
            })
            .collect();
        let activity = cumulative((0..opt.users.max(1)).map(|_| rng.pareto(1.2) + 0.2));
        let songs = opt.songs.max(1);
        let ranks = songs.min(200_000);
        Self {
            users,
            activity,
            songs,
            steep: cumulative((1..=ranks).map(|r| (r as f64).powf(-1.3))),
            flat: cumulative((1..=ranks).map(|r| (r as f64).powf(-1.05))),
        }
    }

    /// A song id for a stream from `country`: mostly from the country's own ranking (a rank
    /// drawn steeply, mapped through the country's own permutation of the catalogue), else
    /// from the global one.
    fn song(&self, rng: &mut Rng, country: u16) -> u64 {
        let (rank, order) = if rng.chance(0.7) {
            (draw(&self.steep, rng) as u64, u64::from(country) + 1)
        } else {
            (draw(&self.flat, rng) as u64, 0)
        };
        // a permutation of the catalogue per country: rank * a + b mod songs, a prime to it
        let a = [1_000_003_u64, 998_244_353, 1_000_000_007][order as usize % 3];
        let index = (rank as u128 * a as u128 + order as u128 * 7_777) % self.songs as u128;
        // song ids up to 10^9
        spread(index as u64, 999_999_937, 1_000_000_000)
    }

    /// One stream: (sng_id, user_id, country code).
    fn stream(&self, rng: &mut Rng) -> (u64, u64, &'static str) {
        let (user, home) = self.users[draw(&self.activity, rng)];
        let country = if rng.chance(0.01) {
            rng.below(ISO_3166.len() as u64) as u16
        } else {
            home
        };
        (self.song(rng, country), user, ISO_3166[country as usize])
    }
}

/// A corrupt line of one of the documented kinds, made from a stream.
fn corrupt(rng: &mut Rng, (s, u, c): (u64, u64, &str)) -> String {
    match rng.below(13) {
        0 => format!("{s}{u}|{c}"),
        1 => format!("{s}|{u}|{c}{s}|{u}|{c}"),
        2 => String::new(),
        3 => format!("{s},{u},{c}"),
        4 => format!("{s}|{u}|{c}{c}{c}"),
        5 => format!("-{s}|{u}|{c}"),
        6 => format!("{s}| |{c}"),
        7 => format!("{s}|null|{c}"),
        8 => format!("{s}|{u}|{}", c.to_ascii_lowercase()),
        9 => format!("{s}|{u}|XK"),
        10 => format!("{s}|{u}|"),
        11 => format!("{s}|{u}{u}{u}|{c}"),
        _ => format!("{s}|{u}|{c}|"),
    }
}

/// Writes the logs into `dir`; returns the lines written.
pub fn generate(dir: &Path, opt: &Options) -> io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng::new(opt.seed);
    let world = World::new(&mut rng, opt);
    let mut written = 0;
    for (n, day) in opt.start.iter_days().take(opt.days as usize).enumerate() {
        if opt.skip.contains(&day) {
            continue;
        }
        let name = format!("listen-{}.log", day.format("%Y%m%d"));
        written += if opt.gzip {
            let file = File::create(dir.join(format!("{name}.gz")))?;
            let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            let mut out = BufWriter::with_capacity(1 << 20, gz);
            let lines = write_day(&mut out, &mut rng, &world, opt, n)?;
            out.into_inner()
                .map_err(|e| e.into_error())?
                .finish()?
                .sync_all()?;
            lines
        } else {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join(name))?);
            let lines = write_day(&mut out, &mut rng, &world, opt, n)?;
            out.flush()?;
            lines
        };
    }
    Ok(written)
}

/// The lines of the `n`th day: every third day with ` | ` and CRLF, the first with a BOM.
fn write_day(
    out: &mut impl Write,
    rng: &mut Rng,
    world: &World,
    opt: &Options,
    n: usize,
) -> io::Result<u64> {
    let padded = n % 3 == 1;
    let (sep, end): (&str, &str) = if padded { (" | ", "\r\n") } else { ("|", "\n") };
    if n == 0 {
        out.write_all("\u{feff}".as_bytes())?;
    }
    let mut ids = itoa::Buffer::new();
    for _ in 0..opt.streams {
        let stream = world.stream(rng);
        if rng.chance(opt.bad_rate) {
            let line = corrupt(rng, stream);
            out.write_all(line.as_bytes())?;
        } else {
            let (s, u, c) = stream;
            if rng.chance(0.002) {
                out.write_all(b"00")?;
            }
            out.write_all(ids.format(s).as_bytes())?;
            out.write_all(sep.as_bytes())?;
            out.write_all(ids.format(u).as_bytes())?;
            out.write_all(sep.as_bytes())?;
            out.write_all(c.as_bytes())?;
        }
        out.write_all(end.as_bytes())?;
    }
    Ok(opt.streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_reach_past_2_31() {
        let ids: std::collections::HashSet<u64> = (0..100_000)
            .map(|i| spread(i, 7_919_999_981, 10_000_000_000))
            .collect();
        assert_eq!(ids.len(), 100_000);
        assert!(ids.iter().any(|id| *id > 1 << 31));
        assert_eq!(ISO_3166.len(), 249);
    }

    #[test]
    fn same_seed_same_logs_with_the_quirks() {
        let dir = std::env::temp_dir().join(format!("lake-gen-deezer-{}", std::process::id()));
        let opt = Options {
            start: NaiveDate::from_ymd_opt(2021, 12, 1).unwrap_or_default(),
            days: 3,
            streams: 2000,
            users: 50,
            songs: 300,
            bad_rate: 0.05,
            skip: Vec::new(),
            gzip: false,
            seed: 4,
        };
        let read = |d: &str| std::fs::read(dir.join(format!("listen-{d}.log"))).unwrap_or_default();
        generate(&dir, &opt).ok();
        let first = (read("20211201"), read("20211202"));
        generate(&dir, &opt).ok();
        assert_eq!(first, (read("20211201"), read("20211202")));
        assert!(first.0.starts_with("\u{feff}".as_bytes()));
        let padded = String::from_utf8_lossy(&first.1);
        assert!(padded.contains(" | ") && padded.contains("\r\n"));
        assert!(padded.lines().any(|l| l.trim().is_empty()), "blank lines");
        std::fs::remove_dir_all(&dir).ok();
    }
}
