//! eventsim's four streams (`listen_events`, `page_view_events`, `auth_events`,
//! `status_change_events`) as Fluentd writes them to S3: JSON lines in
//! `<stream>/YYYY/MM/DD/HH_0.json`, one file per stream and hour.
//!
//! Users browse in sessions of pages with eventsim's transitions: a login (that fails now and
//! then), songs (`NextSong`, also a listen event), likes, playlists, settings, an upgrade, a
//! downgrade or a cancellation (status change events), a logout; guests browse without an id and
//! fail to log in. Songs come from a catalogue with Zipf popularity. Fields as eventsim writes
//! them: `ts` in epoch milliseconds, `userAgent` with literal quotes, guests without the
//! personal keys, and in a share of the events the older outputs' `userId` as a string and
//! `length` for `duration`. Fluentd delivers at least once: some lines are written twice; a few
//! are broken. What silver and `gold.eventsim_activity_daily` must hold is reported
//! (`--expected FILE`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, NaiveDate};

use crate::rng::Rng;
use crate::sparkify::mojibake;

#[derive(Debug, Clone)]
pub struct Options {
    pub start: NaiveDate,
    pub days: u32,
    pub users: u32,
    /// Sessions a user starts a day, on average.
    pub sessions: f64,
    /// Share of lines written twice (repeated deliveries).
    pub dup_rate: f64,
    /// Share of broken lines.
    pub bad_rate: f64,
    pub gzip: bool,
    pub seed: u64,
}

pub const STREAMS: [&str; 4] = [
    "listen_events",
    "page_view_events",
    "auth_events",
    "status_change_events",
];

const FIRST: [&str; 8] = [
    "Amelia", "Noah", "Zoé", "Liam", "Sofía", "Mason", "Ava", "Ethan",
];
const LAST: [&str; 8] = [
    "Smith", "Nguyen", "García", "Johnson", "Müller", "Brown", "Davis", "Wilson",
];
/// City, state, zip, lat, lon.
const PLACES: [(&str, &str, &str, f64, f64); 8] = [
    ("New York", "NY", "10001", 40.7506, -73.9972),
    ("Los Angeles", "CA", "90012", 34.0614, -118.2385),
    ("Chicago", "IL", "60601", 41.8858, -87.6181),
    ("Houston", "TX", "77002", 29.7569, -95.3625),
    ("Phoenix", "AZ", "85004", 33.4515, -112.0685),
    ("Seattle", "WA", "98101", 47.6114, -122.3305),
    ("Miami", "FL", "33131", 25.7617, -80.1918),
    ("Boston", "MA", "02108", 42.3588, -71.0707),
];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
];
const ARTISTS: [&str; 10] = [
    "Kings Of Leon",
    "Coldplay",
    "Beyoncé",
    "Björk",
    "Muse",
    "The Black Keys",
    "Sigur Rós",
    "Florence + The Machine",
    "Dwight Yoakam",
    "Jack Johnson",
];
const WORDS: [&str; 12] = [
    "Yellow", "Undo", "Revelry", "Secrets", "Dónde", "Heart", "Night", "Fire", "Ocean", "Niño",
    "Canada", "Gears",
];
/// Pages a logged-in user moves to between songs, with weights.
const PAGES: [(&str, u64); 8] = [
    ("Thumbs Up", 8),
    ("Add to Playlist", 4),
    ("Home", 6),
    ("Settings", 2),
    ("Help", 1),
    ("Upgrade", 2),
    ("Downgrade", 2),
    ("Cancel", 1),
];

struct User {
    id: u64,
    first: &'static str,
    last: &'static str,
    gender: char,
    registration: i64,
    place: usize,
    agent: usize,
    level: &'static str,
    cancelled: bool,
}

struct Song {
    artist: String,
    title: String,
    duration: f64,
}

/// What silver and gold must hold: unique valid events per stream, and the daily activity.
#[derive(Debug, Default, serde::Serialize)]
pub struct Expected {
    pub events: BTreeMap<&'static str, u64>,
    pub lines: u64,
    pub duplicate_lines: u64,
    pub bad_lines: u64,
    pub days: BTreeMap<String, Activity>,
}

/// One day of `gold.eventsim_activity_daily`.
#[derive(Debug, Default, serde::Serialize)]
pub struct Activity {
    pub streams: u64,
    pub active_users: u64,
    pub logins: u64,
    pub failed_logins: u64,
    pub upgrades: u64,
    pub downgrades: u64,
    pub cancellations: u64,
    pub guests_sessions: u64,
    #[serde(skip)]
    users: BTreeSet<u64>,
    #[serde(skip)]
    guest_sessions: BTreeSet<u64>,
}

/// One event: its stream, time and JSON line.
struct Event {
    stream: usize,
    ts: i64,
    line: String,
}

/// The simulation's state while it writes.
struct World {
    rng: Rng,
    users: Vec<User>,
    songs: Vec<Song>,
    /// Cumulative Zipf weights over the songs.
    cdf: Vec<f64>,
    session: u64,
    events: Vec<Event>,
    expected: Expected,
}

pub fn generate(dir: &Path, opt: &Options) -> io::Result<Expected> {
    let mut world = World::new(opt);
    for day in opt.start.iter_days().take(opt.days as usize) {
        world.day(day, opt);
        // a session may run past midnight: its later events go with the next day's files
        let next = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0));
        world.write(dir, opt, next.map(|t| t.and_utc().timestamp_millis()))?;
    }
    world.write(dir, opt, None)?;
    let mut expected = world.expected;
    for a in expected.days.values_mut() {
        a.active_users = a.users.len() as u64;
        a.guests_sessions = a.guest_sessions.len() as u64;
    }
    Ok(expected)
}

impl World {
    fn new(opt: &Options) -> Self {
        let mut rng = Rng::new(opt.seed);
        let users = (0..opt.users.max(1))
            .map(|i| User {
                id: u64::from(i) + 1,
                first: FIRST[rng.below(FIRST.len() as u64) as usize],
                last: LAST[rng.below(LAST.len() as u64) as usize],
                gender: if rng.chance(0.5) { 'M' } else { 'F' },
                registration: 1_538_000_000_000 + rng.below(30_000_000_000) as i64,
                place: rng.below(PLACES.len() as u64) as usize,
                agent: rng.below(AGENTS.len() as u64) as usize,
                level: if rng.chance(0.2) { "paid" } else { "free" },
                cancelled: false,
            })
            .collect();
        let n_songs = (opt.users as usize * 4).clamp(50, 200_000);
        let songs: Vec<Song> = (0..n_songs)
            .map(|i| {
                let words = 1 + rng.below(3) as usize;
                let mut title: Vec<&str> = (0..words)
                    .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                    .collect();
                title.dedup();
                Song {
                    artist: format!("{} {}", ARTISTS[i % ARTISTS.len()], i / ARTISTS.len()),
                    title: title.join(" "),
                    duration: 120.0 + rng.below(240_000) as f64 / 1000.0,
                }
            })
            .collect();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=songs.len())
            .map(|r| {
                acc += (r as f64).powf(-1.1);
                acc
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= acc);
        Self {
            rng,
            users,
            songs,
            cdf,
            session: 0,
            events: Vec::new(),
            expected: Expected::default(),
        }
    }

    /// The sessions of one day: every user that is not cancelled starts some, and guests too.
    fn day(&mut self, day: NaiveDate, opt: &Options) {
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis());
        for u in 0..self.users.len() {
            let mut n = 0;
            while self.rng.chance(opt.sessions / (opt.sessions + 1.0)) && n < 8 {
                n += 1;
            }
            for _ in 0..n {
                if !self.users[u].cancelled {
                    let start = midnight + self.rng.below(86_000_000) as i64;
                    self.user_session(u, start);
                }
            }
        }
        for _ in 0..(self.users.len() / 5).max(1) {
            let start = midnight + self.rng.below(86_000_000) as i64;
            self.guest_session(start);
        }
    }

    fn user_session(&mut self, u: usize, mut ts: i64) {
        self.session += 1;
        let mut item = 0;
        // a login that fails now and then, then one that works
        if self.rng.chance(0.1) {
            self.auth(Some(u), ts, item, false);
            item += 1;
            ts += 5_000;
        }
        self.auth(Some(u), ts, item, true);
        item += 1;
        loop {
            ts += 1_000 + self.rng.below(4_000) as i64;
            if self.rng.chance(0.8) {
                let song = self.draw_song();
                let duration = self.songs[song].duration;
                self.page(Some(u), ts, item, "NextSong", Some(song));
                self.listen(u, ts, item, song);
                ts += (duration * 1000.0) as i64;
            } else {
                let (items, ended) = self.other_page(u, ts, item);
                if ended {
                    break;
                }
                item += items - 1;
            }
            item += 1;
            if self.rng.chance(0.06) {
                ts += 2_000;
                self.page(Some(u), ts, item, "Logout", None);
                break;
            }
        }
    }

    /// A page other than a song, and the status change it may submit; the items it took, and
    /// whether the session ends with it (a cancellation).
    fn other_page(&mut self, u: usize, ts: i64, item: u64) -> (u64, bool) {
        let total: u64 = PAGES.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.below(total);
        let page = PAGES
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or("Home", |(p, _)| p);
        self.page(Some(u), ts, item, page, None);
        let user = &self.users[u];
        let change = match (page, user.level) {
            ("Upgrade", "free") if self.rng.chance(0.5) => {
                Some(("Submit Upgrade", "paid", "Logged In"))
            }
            ("Downgrade", "paid") if self.rng.chance(0.5) => {
                Some(("Submit Downgrade", "free", "Logged In"))
            }
            ("Cancel", _) if self.rng.chance(0.5) => {
                Some(("Cancellation Confirmation", user.level, "Cancelled"))
            }
            _ => None,
        };
        let Some((submit, level, auth)) = change else {
            return (1, false);
        };
        self.page(Some(u), ts + 1_000, item + 1, submit, None);
        self.users[u].level = level;
        self.status_change(u, ts + 1_000, item + 1, auth);
        self.users[u].cancelled = auth == "Cancelled";
        (2, self.users[u].cancelled)
    }

    fn guest_session(&mut self, mut ts: i64) {
        self.session += 1;
        for item in 0..(1 + self.rng.below(4)) {
            let page = ["Home", "About", "Help", "Login"][self.rng.below(4) as usize];
            if page == "Login" {
                self.auth(None, ts, item, false);
            } else {
                self.page(None, ts, item, page, None);
            }
            ts += 3_000 + self.rng.below(20_000) as i64;
        }
    }

    fn draw_song(&mut self) -> usize {
        let u = self.rng.unit();
        self.cdf
            .partition_point(|c| *c < u)
            .min(self.songs.len() - 1)
    }

    /// The keys every event has: time, session, level and place, and the user's keys when
    /// there is a user (guests have none of them).
    fn common(&mut self, u: Option<usize>, ts: i64, item: u64, out: &mut String) {
        let place = PLACES[u.map_or(0, |u| self.users[u].place)];
        let agent = AGENTS[u.map_or(1, |u| self.users[u].agent)];
        let level = u.map_or("free", |u| self.users[u].level);
        let _ = write!(
            out,
            "{{\"ts\":{ts},\"sessionId\":{},\"itemInSession\":{item},\"level\":\"{level}\",\
             \"city\":\"{}\",\"zip\":\"{}\",\"state\":\"{}\",\"lat\":{},\"lon\":{},\
             \"userAgent\":{}",
            self.session,
            place.0,
            place.2,
            place.1,
            place.3,
            place.4,
            json(&format!("\"{agent}\""))
        );
        if let Some(u) = u {
            let user = &self.users[u];
            // older outputs wrote the user id as a string
            let id = if self.rng.chance(0.1) {
                format!("\"{}\"", user.id)
            } else {
                user.id.to_string()
            };
            let _ = write!(
                out,
                ",\"userId\":{id},\"firstName\":{},\"lastName\":{},\"gender\":\"{}\",\"registration\":{}",
                json(user.first),
                json(user.last),
                user.gender,
                user.registration
            );
        }
    }

    fn emit(&mut self, stream: usize, ts: i64, line: String, u: Option<usize>) {
        let activity = self.expected.days.entry(Self::day_of(ts)).or_default();
        match u {
            Some(u) => {
                activity.users.insert(self.users[u].id);
            }
            None => {
                activity.guest_sessions.insert(self.session);
            }
        }
        *self.expected.events.entry(STREAMS[stream]).or_default() += 1;
        self.events.push(Event { stream, ts, line });
    }

    fn day_of(ts: i64) -> String {
        DateTime::from_timestamp_millis(ts)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_default()
    }

    fn page(&mut self, u: Option<usize>, ts: i64, item: u64, page: &str, song: Option<usize>) {
        let mut line = String::new();
        self.common(u, ts, item, &mut line);
        let auth = if u.is_some() { "Logged In" } else { "Guest" };
        let method = if page == "NextSong" { "PUT" } else { "GET" };
        let _ = write!(
            line,
            ",\"page\":\"{page}\",\"auth\":\"{auth}\",\"method\":\"{method}\",\"status\":200"
        );
        if let Some(s) = song {
            self.song_fields(s, &mut line);
        }
        line.push('}');
        self.emit(1, ts, line, u);
    }

    fn song_fields(&mut self, s: usize, line: &mut String) {
        let song = &self.songs[s];
        // older outputs call the length `length`; some names are double-encoded UTF-8
        let length = if self.rng.chance(0.1) {
            "length"
        } else {
            "duration"
        };
        let title = if self.rng.chance(0.05) {
            mojibake(&song.title)
        } else {
            song.title.clone()
        };
        let _ = write!(
            line,
            ",\"artist\":{},\"song\":{},\"{length}\":{}",
            json(&song.artist),
            json(&title),
            song.duration
        );
    }

    fn listen(&mut self, u: usize, ts: i64, item: u64, s: usize) {
        let mut line = String::new();
        self.common(Some(u), ts, item, &mut line);
        self.song_fields(s, &mut line);
        line.push_str(",\"auth\":\"Logged In\"}");
        self.expected
            .days
            .entry(Self::day_of(ts))
            .or_default()
            .streams += 1;
        self.emit(0, ts, line, Some(u));
    }

    fn auth(&mut self, u: Option<usize>, ts: i64, item: u64, success: bool) {
        let mut line = String::new();
        self.common(u, ts, item, &mut line);
        let _ = write!(line, ",\"success\":{success}}}");
        let activity = self.expected.days.entry(Self::day_of(ts)).or_default();
        if success {
            activity.logins += 1;
        } else {
            activity.failed_logins += 1;
        }
        self.emit(2, ts, line, u);
    }

    fn status_change(&mut self, u: usize, ts: i64, item: u64, auth: &str) {
        let mut line = String::new();
        self.common(Some(u), ts, item, &mut line);
        let _ = write!(line, ",\"auth\":\"{auth}\"}}");
        let level = self.users[u].level;
        let activity = self.expected.days.entry(Self::day_of(ts)).or_default();
        match (auth, level) {
            ("Cancelled", _) => activity.cancellations += 1,
            (_, "paid") => activity.upgrades += 1,
            _ => activity.downgrades += 1,
        }
        self.emit(3, ts, line, Some(u));
    }

    /// Writes the events gathered so far from before `until` (all of them without) into hourly
    /// files per stream, with repeated deliveries and broken lines, and forgets them.
    fn write(&mut self, dir: &Path, opt: &Options, until: Option<i64>) -> io::Result<()> {
        let mut files: BTreeMap<(usize, i64), Vec<String>> = BTreeMap::new();
        let (events, later) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|e| until.is_none_or(|u| e.ts < u));
        self.events = later;
        let events: Vec<Event> = events;
        for e in events {
            let hour = e.ts.div_euclid(3_600_000);
            let lines = files.entry((e.stream, hour)).or_default();
            if self.rng.chance(opt.bad_rate) {
                self.expected.bad_lines += 1;
                lines.push(self.broken(&e.line));
            }
            if self.rng.chance(opt.dup_rate) {
                self.expected.duplicate_lines += 1;
                lines.push(e.line.clone());
            }
            lines.push(e.line);
        }
        for ((stream, hour), lines) in files {
            let Some(t) = DateTime::from_timestamp_millis(hour * 3_600_000) else {
                continue;
            };
            let folder = dir
                .join(STREAMS[stream])
                .join(t.format("%Y/%m/%d").to_string());
            fs::create_dir_all(&folder)?;
            let name = format!("{}_0.json", t.format("%H"));
            self.expected.lines += lines.len() as u64;
            let text = lines.join("\n") + "\n";
            if opt.gzip {
                use std::io::Write as _;
                let file = fs::File::create(folder.join(format!("{name}.gz")))?;
                let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
                gz.write_all(text.as_bytes())?;
                gz.finish()?;
            } else {
                fs::write(folder.join(name), text)?;
            }
        }
        Ok(())
    }

    /// A broken line of one of the kinds seen: cut off, `ts` as a string, no `sessionId`.
    fn broken(&mut self, line: &str) -> String {
        match self.rng.below(3) {
            0 => line[..line.len() / 2].to_string(),
            1 => line.replacen("\"ts\":", "\"ts\":\"", 1).replacen(
                ",\"sessionId\"",
                "\",\"sessionId\"",
                1,
            ),
            _ => line.replacen("\"sessionId\":", "\"session\":", 1),
        }
    }
}

/// A JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
