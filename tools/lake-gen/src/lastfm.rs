//! Last.fm-1K-shaped landing data.
//!
//! Writes `userid-timestamp-artid-artname-traid-traname.tsv` (one play per line, no header,
//! each user's plays newest first) and `userid-profile.tsv` (`#id` header) with the quirks of
//! the real files: empty MBIDs, `"` and non-ASCII inside names, the same track name by several
//! artists, exact duplicate plays, scrobble collisions (same user and second, other track),
//! gaps of exactly 1200 s and 1201 s, and a few malformed lines of every kind silver and bronze
//! must reject: too few fields, impossible timestamps, empty user ids, blank names.
//! Shape: heavy-tailed plays per user and session length, Zipf song popularity mixed with
//! per-user favourites.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::rng::Rng;

pub const PLAYS_FILE: &str = "userid-timestamp-artid-artname-traid-traname.tsv";
pub const PROFILE_FILE: &str = "userid-profile.tsv";

#[derive(Debug, Clone)]
pub struct Options {
    pub rows: u64,
    pub users: u32,
    pub seed: u64,
    pub dup_rate: f64,
    pub bad_rate: f64,
    /// Spread each user's plays over this many months from the start (longer pauses between
    /// sessions) instead of the real data's four years and a half: many month partitions.
    pub months: Option<u32>,
    /// The plays' first day, as seconds since 1970 (default 2005-02-14, as in the real data).
    pub start: Option<i64>,
}

const WORDS: &[&str] = &[
    "love", "night", "day", "heart", "time", "life", "world", "light", "dream", "fire", "rain",
    "sun", "moon", "star", "blue", "black", "white", "red", "gold", "summer", "winter", "city",
    "road", "home", "girl", "boy", "baby", "angel", "devil", "song", "dance", "river", "sea",
    "sky", "ghost", "shadow", "mirror", "window", "wild", "young", "old", "lost", "found",
    "broken", "golden", "silver", "electric", "sweet", "lonely", "crazy", "happy", "sad",
];
const EXOTIC: &[&str] = &[
    "Björk",
    "Sigur Rós",
    "Mötley Crüe",
    "Beyoncé",
    "坂本龍一",
    "椎名林檎",
    "Кино",
    "Café Tacvba",
    "Jóhann Jóhannsson",
    "Motörhead",
    "→Pia-No-Jac←",
    "Sunn O)))",
    "Żywiołak",
    "ずっと真夜中でいいのに。",
];
const COMMON_TITLES: &[&str] = &[
    "Intro",
    "Outro",
    "Home",
    "Untitled",
    "Interlude",
    "Hello",
    "Run",
];
const COUNTRIES: &[&str] = &[
    "United States",
    "United Kingdom",
    "Germany",
    "Poland",
    "Brazil",
    "Japan",
    "Sweden",
    "Finland",
    "Spain",
    "Canada",
    "France",
    "Netherlands",
    "",
    "",
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn title_case(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn name(rng: &mut Rng, i: usize, max_words: usize, exotic_rate: f64, quote_rate: f64) -> String {
    if rng.chance(exotic_rate) {
        let base = EXOTIC[rng.below(EXOTIC.len() as u64) as usize];
        return if rng.chance(0.5) {
            base.to_string()
        } else {
            format!("{base} {i}")
        };
    }
    let n = 1 + rng.below(max_words as u64) as usize;
    let words: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect();
    let mut s = title_case(&words);
    if rng.chance(quote_rate) {
        s = if rng.chance(0.5) {
            format!("\"{s}\"")
        } else {
            s.replacen(' ', " \"", 1) + "\""
        };
    }
    if rng.chance(0.7) {
        s = format!("{s} {}", i % 997);
    }
    s
}

fn mbid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

struct Catalogue {
    artist_name: Vec<String>,
    artist_mbid: Vec<String>,
    track_artist: Vec<usize>,
    track_name: Vec<String>,
    track_mbid: Vec<String>,
    /// cumulative Zipf weights over track ranks
    cdf: Vec<f64>,
}

impl Catalogue {
    fn new(rng: &mut Rng, rows: u64) -> Self {
        let n_tracks = ((rows as f64).powf(0.85) as usize).max(1000);
        let n_artists = (n_tracks / 6).max(200);
        let artist_name: Vec<String> = (0..n_artists)
            .map(|i| name(rng, i, 3, 0.01, 0.003))
            .collect();
        let artist_mbid = (0..n_artists)
            .map(|_| {
                if rng.chance(0.03) {
                    String::new()
                } else {
                    mbid(rng)
                }
            })
            .collect();
        let track_artist = (0..n_tracks)
            .map(|_| ((rng.pareto(1.2) * n_artists as f64 / 50.0) as usize).min(n_artists - 1))
            .collect();
        let track_name = (0..n_tracks)
            .map(|i| {
                if rng.chance(0.01) {
                    COMMON_TITLES[rng.below(COMMON_TITLES.len() as u64) as usize].to_string()
                } else {
                    name(rng, i, 4, 0.002, 0.01)
                }
            })
            .collect();
        let track_mbid = (0..n_tracks)
            .map(|_| {
                if rng.chance(0.11) {
                    String::new()
                } else {
                    mbid(rng)
                }
            })
            .collect();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n_tracks)
            .map(|r| {
                acc += (r as f64).powf(-1.07);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Self {
            artist_name,
            artist_mbid,
            track_artist,
            track_name,
            track_mbid,
            cdf,
        }
    }

    fn zipf(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn timestamp(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// (start second, track) of one user's plays, oldest first.
fn user_plays(
    rng: &mut Rng,
    cat: &Catalogue,
    n: u64,
    favourites: &[usize],
    opt: &Options,
) -> Vec<(i64, usize)> {
    const T_LO: i64 = 1_108_339_200; // 2005-02-14
    const T_HI: i64 = 1_245_369_600; // 2009-06-19
    const MONTH: i64 = 2_629_746; // a mean Gregorian month in seconds
    let t_lo = opt.start.unwrap_or(T_LO);
    let t_hi = t_lo + opt.months.map_or(T_HI - T_LO, |m| i64::from(m) * MONTH);
    let mut gaps = Vec::with_capacity(n as usize);
    while (gaps.len() as u64) < n {
        let len = ((1.0 + rng.pareto(0.9) * 6.0) as u64)
            .min(8000)
            .min(n - gaps.len() as u64);
        // between sessions: hours to days, sometimes exactly 1201 s
        gaps.push(if rng.chance(0.01) {
            1201
        } else {
            1201 + (rng.exponential() * 14.0 * 3600.0) as i64
        });
        for _ in 1..len {
            // inside a session: 2-7 minutes, sometimes exactly 1200 s, sometimes a collision
            gaps.push(if rng.chance(0.0005) {
                1200
            } else if rng.chance(0.002) {
                0
            } else {
                120 + rng.below(301) as i64
            });
        }
    }
    if opt.months.is_some() {
        stretch_pauses(&mut gaps, t_hi - t_lo);
    }
    let span: i64 = gaps.iter().skip(1).sum();
    let first = t_lo + rng.below((t_hi - span - t_lo).max(1) as u64) as i64;
    let mut t = first;
    gaps.iter()
        .enumerate()
        .map(|(i, g)| {
            if i > 0 {
                t += g;
            }
            let track = if rng.chance(0.45) {
                favourites[rng.below(favourites.len() as u64) as usize]
            } else {
                cat.zipf(rng)
            };
            (t, track)
        })
        .collect()
}

/// Lengthens the pauses between sessions (the gaps of 1201 s and more) so that the plays span
/// about 95% of `window` seconds; the gaps inside sessions stay as they are.
fn stretch_pauses(gaps: &mut [i64], window: i64) {
    let span: i64 = gaps.iter().skip(1).sum();
    let pauses: i64 = gaps.iter().skip(1).filter(|g| **g > 1200).sum();
    let want = window / 20 * 19;
    if pauses == 0 || span >= want {
        return;
    }
    let factor = (want - (span - pauses)) as f64 / pauses as f64;
    for g in gaps.iter_mut().skip(1).filter(|g| **g > 1200) {
        *g = (*g as f64 * factor) as i64;
    }
}

/// Writes both files into `dir`; returns the number of play lines written.
pub fn generate(dir: &Path, opt: &Options) -> io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng::new(opt.seed);
    let cat = Catalogue::new(&mut rng, opt.rows);
    let (ids, per_user) = users(&mut rng, opt);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join(PLAYS_FILE))?);
    let mut written = 0u64;
    for (id, n) in ids.iter().zip(per_user) {
        if n > 0 {
            written += write_user_plays(&mut out, &mut rng, &cat, *id, n, opt)?;
        }
    }
    out.flush()?;
    write_profiles(dir, &mut rng, &ids)?;
    Ok(written)
}

/// The user ids (sorted) and how many plays each has: a log-normal share of the plays.
fn users(rng: &mut Rng, opt: &Options) -> (Vec<u32>, Vec<u64>) {
    let users = opt.users.clamp(1, 1000);
    let mut ids: Vec<u32> = (1..=1000).collect();
    rng.shuffle(&mut ids);
    let mut ids = ids[..users as usize].to_vec();
    ids.sort_unstable();
    let weights: Vec<f64> = ids.iter().map(|_| (rng.normal() * 1.1).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut per_user: Vec<u64> = weights
        .iter()
        .map(|w| ((w / total) * opt.rows as f64) as u64)
        .collect();
    let assigned: u64 = per_user.iter().sum();
    if let Some(last) = per_user.last_mut() {
        *last += opt.rows.saturating_sub(assigned);
    }
    (ids, per_user)
}

/// Writes `n` plays of user `id` (and their duplicates), newest first as in the real file; a
/// share of them malformed in the ways the real data's bad lines are. Returns the lines written.
fn write_user_plays(
    out: &mut impl Write,
    rng: &mut Rng,
    cat: &Catalogue,
    id: u32,
    n: u64,
    opt: &Options,
) -> io::Result<u64> {
    let user = format!("user_{id:06}");
    let favourites: Vec<usize> = (0..150).map(|_| cat.zipf(rng)).collect();
    let mut plays = user_plays(rng, cat, n, &favourites, opt);
    let dups: Vec<(i64, usize)> = plays
        .iter()
        .filter(|_| rng.chance(opt.dup_rate))
        .copied()
        .collect();
    plays.extend(dups);
    // newest first, as in the real file (stable, so duplicates stay next to each other)
    plays.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut written = 0;
    for (t, track) in plays {
        let artist = cat.track_artist[track];
        let ts = timestamp(t);
        let fields = [
            user.as_str(),
            ts.as_str(),
            cat.artist_mbid[artist].as_str(),
            cat.artist_name[artist].as_str(),
            cat.track_mbid[track].as_str(),
            cat.track_name[track].as_str(),
        ];
        if rng.chance(opt.bad_rate) {
            match rng.below(5) {
                0 => writeln!(out, "{}", fields[..4].join("\t"))?,
                1 => writeln!(
                    out,
                    "{}\t2009-13-45T99:61:00Z\t{}",
                    fields[0],
                    fields[2..].join("\t")
                )?,
                2 => writeln!(out, "\t{}", fields[1..].join("\t"))?,
                3 => writeln!(
                    out,
                    "{}\t   \t{}",
                    fields[..3].join("\t"),
                    fields[4..].join("\t")
                )?,
                _ => writeln!(out, "{}\t ", fields[..5].join("\t"))?,
            }
        } else {
            writeln!(out, "{}", fields.join("\t"))?;
        }
        written += 1;
    }
    Ok(written)
}

/// Writes `userid-profile.tsv`: a header, then one line per user, many fields empty.
fn write_profiles(dir: &Path, rng: &mut Rng, ids: &[u32]) -> io::Result<()> {
    let mut p = BufWriter::new(File::create(dir.join(PROFILE_FILE))?);
    writeln!(p, "#id\tgender\tage\tcountry\tregistered")?;
    for id in ids {
        let gender = ["m", "f", ""][rng.below(3) as usize];
        let age = if rng.chance(0.7) {
            String::new()
        } else {
            (15 + rng.below(45)).to_string()
        };
        let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
        let registered = if rng.chance(0.05) {
            String::new()
        } else {
            format!(
                "{} {}, {}",
                MONTHS[rng.below(12) as usize],
                1 + rng.below(28),
                2002 + rng.below(7)
            )
        };
        writeln!(p, "user_{id:06}\t{gender}\t{age}\t{country}\t{registered}")?;
    }
    p.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_formatted_in_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_241_478_537), "2009-05-04T23:08:57Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn same_seed_same_data() {
        let opt = Options {
            rows: 2000,
            users: 5,
            seed: 3,
            dup_rate: 0.01,
            bad_rate: 0.01,
            months: None,
            start: None,
        };
        let base = std::env::temp_dir().join(format!("lake-gen-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        assert!(generate(&a, &opt).is_ok() && generate(&b, &opt).is_ok());
        let read = |d: &Path| std::fs::read(d.join(PLAYS_FILE)).unwrap_or_default();
        assert!(!read(&a).is_empty());
        assert_eq!(read(&a), read(&b));
        std::fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn months_spread_the_plays_over_that_many_months() {
        let opt = Options {
            rows: 20_000,
            users: 4,
            seed: 3,
            dup_rate: 0.0,
            bad_rate: 0.0,
            months: Some(600),
            start: None,
        };
        let dir = std::env::temp_dir().join(format!("lake-gen-months-{}", std::process::id()));
        assert!(generate(&dir, &opt).is_ok());
        let plays = std::fs::read_to_string(dir.join(PLAYS_FILE)).unwrap_or_default();
        let months: std::collections::BTreeSet<&str> = plays
            .lines()
            .filter_map(|l| l.split('\t').nth(1).map(|t| &t[..7]))
            .collect();
        std::fs::remove_dir_all(&dir).ok();
        // 50 years from 2005-02: most months hold a play (4 users), none falls after the window
        assert!(months.len() > 300, "{} months", months.len());
        assert!(
            months.iter().all(|m| *m >= "2005-02" && *m < "2055-03"),
            "{months:?}"
        );
    }

    #[test]
    fn start_and_one_month_make_new_plays_after_the_real_data() {
        let opt = Options {
            rows: 2_000,
            users: 20,
            seed: 4,
            dup_rate: 0.0,
            bad_rate: 0.0,
            months: Some(1),
            start: Some(1_245_456_000), // 2009-06-20
        };
        let dir = std::env::temp_dir().join(format!("lake-gen-start-{}", std::process::id()));
        assert!(generate(&dir, &opt).is_ok());
        let plays = std::fs::read_to_string(dir.join(PLAYS_FILE)).unwrap_or_default();
        std::fs::remove_dir_all(&dir).ok();
        let times: Vec<&str> = plays.lines().filter_map(|l| l.split('\t').nth(1)).collect();
        assert_eq!(times.len(), 2_000);
        assert!(
            times
                .iter()
                .all(|t| *t >= "2009-06-20" && *t < "2009-08-01"),
            "{:?}",
            times.iter().max()
        );
    }
}
