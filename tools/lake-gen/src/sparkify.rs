//! Sparkify-shaped landing data: `song_data/` and `log_data/` as the Udacity data lake has them.
//!
//! - `song_data/X/Y/Z/TRXYZ….json`: one song object per file, no trailing newline, non-ASCII as
//!   `\uXXXX`, `year` 0 for unknown, `artist_location` "" and null coordinates for many artists,
//!   some artists in several files.
//! - `log_data/YYYY/MM/YYYY-MM-DD-events.json`: eventsim JSON lines with keys in alphabetical
//!   order, `ts` in epoch milliseconds, `registration` as a float, `userId` a string and `""` for
//!   logged-out visitors (pages Home, Login, About, Help), `userAgent` with literal quotes,
//!   non-ASCII song and artist names double-encoded (mojibake), users moving between free and
//!   paid, no trailing newline; a share of NextSong events match the song data exactly.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use crate::lastfm::timestamp;
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct Options {
    pub songs: usize,
    pub events: usize,
    pub users: usize,
    pub days: u32,
    pub seed: u64,
}

const FIRST_NAMES: &[&str] = &[
    "Walter", "Kaylee", "Ryan", "Lily", "Jacob", "Chloe", "Tegan", "Aleena", "Jayden", "Mohammad",
];
const LAST_NAMES: &[&str] = &[
    "Frye",
    "Summers",
    "Smith",
    "Koch",
    "Klein",
    "Cuevas",
    "Levine",
    "Kirby",
    "Bell",
    "Rodriguez",
];
const LOCATIONS: &[&str] = &[
    "San Francisco-Oakland-Hayward, CA",
    "Phoenix-Mesa-Scottsdale, AZ",
    "Portland-South Portland, ME",
    "Atlanta-Sandy Springs-Roswell, GA",
    "New York-Newark-Jersey City, NY-NJ-PA",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
];
const ARTISTS: &[&str] = &[
    "Dwight Yoakam",
    "Björk",
    "Kings Of Leon",
    "Coldplay",
    "Beyoncé",
    "Alliance Ethnik",
    "Sigur Rós",
    "Florence + The Machine",
    "Muse",
    "The Black Keys",
    "Clementina Santafè",
    "Jack Johnson",
];
const WORDS: &[&str] = &[
    "You're",
    "The",
    "One",
    "Undo",
    "Revelry",
    "Yellow",
    "Secrets",
    "Représente",
    "Sehr",
    "kosmisch",
    "Dónde",
    "Canada",
    "Gears",
    "Heart",
    "Night",
    "Fire",
    "Ocean",
    "Niño",
    "Theme From \"Rocky\"",
];
const OTHER_PAGES: &[&str] = &[
    "Home",
    "Logout",
    "Settings",
    "Add to Playlist",
    "Thumbs Up",
    "Thumbs Down",
    "Downgrade",
    "Upgrade",
];
const LOGGED_OUT_PAGES: &[&str] = &["Home", "Login", "About", "Help"];

/// JSON string literal with non-ASCII written as `\uXXXX` (as the Sparkify files do).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// UTF-8 read as Latin-1 and encoded again, twice: `é` becomes `Ã\u{83}Â©`.
pub fn mojibake(s: &str) -> String {
    let mut text = s.to_string();
    for _ in 0..2 {
        text = text.bytes().map(char::from).collect();
    }
    text
}

struct Song {
    id: String,
    title: String,
    artist_id: String,
    artist: String,
    duration: f64,
}

fn id(rng: &mut Rng, prefix: &str) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let body: String = (0..16)
        .map(|_| ALPHA[rng.below(ALPHA.len() as u64) as usize] as char)
        .collect();
    format!("{prefix}{body}")
}

fn song_title(rng: &mut Rng) -> String {
    let n = 1 + rng.below(3) as usize;
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A listener: id, first/last name (an index), gender, location, user agent, registration.
struct User {
    id: String,
    name: usize,
    gender: char,
    location: usize,
    agent: usize,
    registration: f64,
}

/// Writes `song_data/` and `log_data/` into `dir`; returns (songs, events) written.
pub fn generate(dir: &Path, opt: &Options) -> io::Result<(usize, usize)> {
    let mut rng = Rng::new(opt.seed);
    let artists = artists(&mut rng, opt.songs);
    let mut songs = Vec::new();
    for i in 0..opt.songs.max(1) {
        songs.push(write_song(dir, &mut rng, &artists, i)?);
    }
    let users = users(&mut rng, opt.users);
    let mut level: Vec<&str> = users
        .iter()
        .map(|_| if rng.chance(0.3) { "paid" } else { "free" })
        .collect();
    let per_day = (opt.events / opt.days.max(1) as usize).max(1);
    let mut written = 0;
    let mut session = 1_i64;
    for day in 0..opt.days.max(1) {
        let day_ms = START_MS + i64::from(day) * 86_400_000;
        let lines = day_events(
            &mut rng,
            &songs,
            &users,
            &mut level,
            day_ms,
            per_day,
            &mut session,
        );
        let date = &timestamp(day_ms / 1000)[..10];
        let folder = dir.join("log_data").join(&date[..4]).join(&date[5..7]);
        fs::create_dir_all(&folder)?;
        fs::write(folder.join(format!("{date}-events.json")), lines.join("\n"))?;
        written += lines.len();
    }
    Ok((songs.len(), written))
}

/// 2018-11-01T00:00:00Z, the first day of the logs.
const START_MS: i64 = 1_541_030_400_000;

/// Artists (id, name): the well-known names first, then numbered variants of them.
fn artists(rng: &mut Rng, songs: usize) -> Vec<(String, String)> {
    let n = (songs / 2).clamp(1, ARTISTS.len() * 50);
    (0..n)
        .map(|i| {
            let base = ARTISTS[i % ARTISTS.len()];
            let name = if i < ARTISTS.len() {
                base.to_string()
            } else {
                format!("{base} {i}")
            };
            (id(rng, "AR"), name)
        })
        .collect()
}

/// Writes song `i` as `song_data/X/Y/Z/TRXYZ….json`: every artist has a song, the rest share
/// artists, so some artists are in several files.
fn write_song(
    dir: &Path,
    rng: &mut Rng,
    artists: &[(String, String)],
    i: usize,
) -> io::Result<Song> {
    let a = if i < artists.len() {
        i
    } else {
        rng.below(artists.len() as u64) as usize
    };
    let (artist_id, artist) = artists[a].clone();
    let song = Song {
        id: id(rng, "SO"),
        title: song_title(rng),
        artist_id,
        artist,
        duration: (120_000.0 + rng.below(300_000) as f64) / 1000.0 + 0.00001,
    };
    let track = id(rng, "TR");
    let folder = dir
        .join("song_data")
        .join(&track[2..3])
        .join(&track[3..4])
        .join(&track[4..5]);
    fs::create_dir_all(&folder)?;
    let year = if rng.chance(0.6) {
        0
    } else {
        1960 + rng.below(60)
    };
    let (lat, lon, location) = if rng.chance(0.55) {
        ("null".to_string(), "null".to_string(), String::new())
    } else {
        (
            format!("{:.5}", 30.0 + rng.unit() * 20.0),
            format!("{:.5}", -120.0 + rng.unit() * 40.0),
            "Nashville, TN".to_string(),
        )
    };
    let text = format!(
        "{{\"num_songs\": 1, \"artist_id\": {}, \"artist_latitude\": {lat}, \"artist_longitude\": {lon}, \"artist_location\": {}, \"artist_name\": {}, \"song_id\": {}, \"title\": {}, \"duration\": {}, \"year\": {year}}}",
        json_str(&song.artist_id),
        json_str(&location),
        json_str(&song.artist),
        json_str(&song.id),
        json_str(&song.title),
        song.duration,
    );
    fs::write(folder.join(format!("{track}.json")), text)?;
    Ok(song)
}

fn users(rng: &mut Rng, n: usize) -> Vec<User> {
    (0..n.max(1))
        .map(|i| User {
            id: (i + 2).to_string(),
            name: rng.below(FIRST_NAMES.len() as u64) as usize,
            gender: if rng.chance(0.5) { 'M' } else { 'F' },
            location: rng.below(LOCATIONS.len() as u64) as usize,
            agent: rng.below(AGENTS.len() as u64) as usize,
            registration: 1_540_000_000_000.0 + rng.below(2_000_000_000) as f64,
        })
        .collect()
}

/// The event lines of the day starting at `day_ms`: sessions of pages by one user each, a few
/// logged-out visitors, users moving between free and paid.
fn day_events(
    rng: &mut Rng,
    songs: &[Song],
    users: &[User],
    level: &mut [&'static str],
    day_ms: i64,
    per_day: usize,
    session: &mut i64,
) -> Vec<String> {
    let mut lines = Vec::with_capacity(per_day);
    let mut ts = day_ms + rng.below(3_600_000) as i64;
    let mut item = 0;
    let mut user = rng.below(users.len() as u64) as usize;
    for _ in 0..per_day {
        ts += 1000 + rng.below(400_000) as i64;
        if ts >= day_ms + 86_400_000 {
            break;
        }
        if rng.chance(0.08) {
            *session += 1;
            item = 0;
            user = rng.below(users.len() as u64) as usize;
        }
        let line = if rng.chance(0.03) {
            logged_out_event(rng, item, *session, ts)
        } else {
            user_event(
                rng,
                songs,
                &users[user],
                &mut level[user],
                item,
                *session,
                ts,
            )
        };
        lines.push(line);
        item += 1;
    }
    lines
}

/// A logged-out visitor's event: `userId` "" and no personal fields.
fn logged_out_event(rng: &mut Rng, item: u32, session: i64, ts: i64) -> String {
    let page = LOGGED_OUT_PAGES[rng.below(LOGGED_OUT_PAGES.len() as u64) as usize];
    format!(
        "{{\"artist\":null,\"auth\":\"Logged Out\",\"firstName\":null,\"gender\":null,\"itemInSession\":{item},\"lastName\":null,\"length\":null,\"level\":\"free\",\"location\":null,\"method\":\"GET\",\"page\":\"{page}\",\"registration\":null,\"sessionId\":{session},\"song\":null,\"status\":200,\"ts\":{ts},\"userAgent\":null,\"userId\":\"\"}}"
    )
}

/// A logged-in user's event: mostly a song (a share exactly as the song data has it, mojibake
/// included), else another page; an upgrade or a downgrade changes the user's level.
fn user_event(
    rng: &mut Rng,
    songs: &[Song],
    user: &User,
    level: &mut &'static str,
    item: u32,
    session: i64,
    ts: i64,
) -> String {
    let page = if rng.chance(0.85) {
        "NextSong"
    } else {
        let p = OTHER_PAGES[rng.below(OTHER_PAGES.len() as u64) as usize];
        if p == "Upgrade" {
            *level = "paid";
        } else if p == "Downgrade" {
            *level = "free";
        }
        p
    };
    let (artist, song, length) = if page == "NextSong" {
        let s = &songs[rng.below(songs.len() as u64) as usize];
        let (title, name) = if rng.chance(0.3) {
            // exactly the song data's song: it matches in silver
            (s.title.clone(), s.artist.clone())
        } else {
            (
                song_title(rng),
                ARTISTS[rng.below(ARTISTS.len() as u64) as usize].to_string(),
            )
        };
        (
            json_str(&mojibake(&name)),
            json_str(&mojibake(&title)),
            s.duration.to_string(),
        )
    } else {
        ("null".into(), "null".into(), "null".into())
    };
    format!(
        "{{\"artist\":{artist},\"auth\":\"Logged In\",\"firstName\":\"{}\",\"gender\":\"{}\",\"itemInSession\":{item},\"lastName\":\"{}\",\"length\":{length},\"level\":\"{level}\",\"location\":{},\"method\":\"PUT\",\"page\":\"{page}\",\"registration\":{:.1},\"sessionId\":{session},\"song\":{song},\"status\":200,\"ts\":{ts},\"userAgent\":{},\"userId\":\"{}\"}}",
        FIRST_NAMES[user.name],
        user.gender,
        LAST_NAMES[user.name],
        json_str(LOCATIONS[user.location]),
        user.registration,
        json_str(&format!("\"{}\"", AGENTS[user.agent])),
        user.id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_escaped_and_mojibake_is_double_encoded() {
        assert_eq!(json_str("Beyoncé"), "\"Beyonc\\u00e9\"");
        assert_eq!(
            json_str(&mojibake("Beyoncé")),
            "\"Beyonc\\u00c3\\u0083\\u00c2\\u00a9\""
        );
        assert_eq!(json_str("a/b \"q\""), "\"a\\/b \\\"q\\\"\"");
    }
}
