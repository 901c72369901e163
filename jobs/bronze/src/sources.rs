//! The sources bronze lands, each a folder of the landing zone: which objects hold records of
//! which bronze table, and what a well-formed record looks like.

use chrono::NaiveDate;
use lake_schema::{
    BRONZE_DEEZER_LISTENS, BRONZE_DEEZER_QUARANTINE, BRONZE_EVENTSIM_AUTH_EVENTS,
    BRONZE_EVENTSIM_LISTEN_EVENTS, BRONZE_EVENTSIM_PAGE_VIEW_EVENTS, BRONZE_EVENTSIM_QUARANTINE,
    BRONZE_EVENTSIM_STATUS_CHANGE_EVENTS, BRONZE_LASTFM_PLAYS, BRONZE_LASTFM_PROFILES,
    BRONZE_LASTFM_QUARANTINE, BRONZE_SPARKIFY_EVENTS, BRONZE_SPARKIFY_QUARANTINE,
    BRONZE_SPARKIFY_SONGS, DEEZER, EVENTSIM, LASTFM, SPARKIFY, TableDef,
};

/// How the records of a target table are written in its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One record per line, `width` fields separated by `separator` (a tab, `|`), no quoting.
    /// With `header`, a first line starting with `#` is a header, not data.
    Delimited {
        separator: u8,
        width: usize,
        header: bool,
    },
    /// One JSON value per line.
    JsonLines,
    /// JSON values written one after the other, each possibly over several lines (the usual
    /// case is one object per file, pretty-printed or not).
    JsonDocument,
}

#[derive(Debug)]
pub struct Target {
    /// The bronze table its records go to.
    pub def: &'static TableDef,
    pub format: Format,
    /// Columns whose value comes from the object's name, not from its lines (a log's day).
    pub derived: &'static [Derived],
}

/// A column of a target filled from the name of the object (or archive member) each record
/// comes from; the source's `classify` has accepted the name.
#[derive(Debug)]
pub struct Derived {
    pub column: &'static str,
    pub value: fn(&str) -> String,
}

impl PartialEq for Target {
    /// Targets are the same when they fill the same table.
    fn eq(&self, other: &Self) -> bool {
        self.def.is(other.def)
    }
}

impl Eq for Target {}

/// What a landing object (or archive member) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Records of `target` (one of its source's targets), gzip-compressed when `gzip`.
    Records {
        target: &'static Target,
        gzip: bool,
    },
    TarGz,
    Zip,
    Ignored(&'static str),
}

#[derive(Debug)]
pub struct Source {
    pub name: &'static str,
    pub targets: &'static [&'static Target],
    pub quarantine: &'static TableDef,
    /// Classifies a path relative to the source folder (or an archive member's path).
    pub classify: fn(&str) -> Kind,
}

impl Source {
    /// Every table the source lands into: its targets' tables, then its quarantine.
    pub fn tables(&self) -> impl Iterator<Item = &'static TableDef> + '_ {
        self.targets
            .iter()
            .map(|t| t.def)
            .chain(std::iter::once(self.quarantine))
    }
}

pub const SOURCES: &[&Source] = &[
    &LASTFM_SOURCE,
    &SPARKIFY_SOURCE,
    &DEEZER_SOURCE,
    &EVENTSIM_SOURCE,
];

const LASTFM_PLAYS: Target = Target {
    def: &BRONZE_LASTFM_PLAYS,
    format: Format::Delimited {
        separator: b'\t',
        width: 6,
        header: false,
    },
    derived: &[],
};

const LASTFM_PROFILES: Target = Target {
    def: &BRONZE_LASTFM_PROFILES,
    format: Format::Delimited {
        separator: b'\t',
        width: 5,
        header: true,
    },
    derived: &[],
};

/// Last.fm 1K: every `.tsv`/`.tsv.gz` whose name starts with `userid-profile` holds profiles,
/// every other one plays; `.tar.gz`/`.tgz` archives (the original `lastfm-dataset-1K.tar.gz`)
/// are read member by member with the same rules.
pub const LASTFM_SOURCE: Source = Source {
    name: LASTFM,
    targets: &[&LASTFM_PLAYS, &LASTFM_PROFILES],
    quarantine: &BRONZE_LASTFM_QUARANTINE,
    classify: classify_lastfm,
};

const SPARKIFY_SONGS: Target = Target {
    def: &BRONZE_SPARKIFY_SONGS,
    format: Format::JsonDocument,
    derived: &[],
};

const SPARKIFY_EVENTS: Target = Target {
    def: &BRONZE_SPARKIFY_EVENTS,
    format: Format::JsonLines,
    derived: &[],
};

/// Sparkify: `song_data/**.json` (one song per file) and `log_data/**.json` (JSON lines of
/// eventsim events), or the zipped distribution (`song-data.zip`, `log-data.zip`) as it is.
pub const SPARKIFY_SOURCE: Source = Source {
    name: SPARKIFY,
    targets: &[&SPARKIFY_SONGS, &SPARKIFY_EVENTS],
    quarantine: &BRONZE_SPARKIFY_QUARANTINE,
    classify: classify_sparkify,
};

const DEEZER_LISTENS: Target = Target {
    def: &BRONZE_DEEZER_LISTENS,
    format: Format::Delimited {
        separator: b'|',
        width: 3,
        header: false,
    },
    derived: &[Derived {
        column: "day",
        value: deezer_log_day,
    }],
};

/// Deezer's daily logs: `listen-YYYYMMDD.log` or `listen-YYYYMMDD.log.gz` (a real date), one
/// stream a line; the day of every line is its file's.
pub const DEEZER_SOURCE: Source = Source {
    name: DEEZER,
    targets: &[&DEEZER_LISTENS],
    quarantine: &BRONZE_DEEZER_QUARANTINE,
    classify: classify_deezer,
};

/// The eventsim streams, each the JSON lines of the folder of its name.
const EVENTSIM_STREAMS: [(&str, &Target); 4] = [
    ("listen_events", &EVENTSIM_LISTENS),
    ("page_view_events", &EVENTSIM_PAGE_VIEWS),
    ("auth_events", &EVENTSIM_AUTHS),
    ("status_change_events", &EVENTSIM_STATUS_CHANGES),
];

const fn json_lines(def: &'static TableDef) -> Target {
    Target {
        def,
        format: Format::JsonLines,
        derived: &[],
    }
}

const EVENTSIM_LISTENS: Target = json_lines(&BRONZE_EVENTSIM_LISTEN_EVENTS);
const EVENTSIM_PAGE_VIEWS: Target = json_lines(&BRONZE_EVENTSIM_PAGE_VIEW_EVENTS);
const EVENTSIM_AUTHS: Target = json_lines(&BRONZE_EVENTSIM_AUTH_EVENTS);
const EVENTSIM_STATUS_CHANGES: Target = json_lines(&BRONZE_EVENTSIM_STATUS_CHANGE_EVENTS);

/// eventsim as Fluentd writes it: `<stream>/**.json` or `.json.gz`, JSON lines, at any folder
/// depth below the stream's folder (`listen_events/2022/04/15/13_0.json.gz`).
pub const EVENTSIM_SOURCE: Source = Source {
    name: EVENTSIM,
    targets: &[
        &EVENTSIM_LISTENS,
        &EVENTSIM_PAGE_VIEWS,
        &EVENTSIM_AUTHS,
        &EVENTSIM_STATUS_CHANGES,
    ],
    quarantine: &BRONZE_EVENTSIM_QUARANTINE,
    classify: classify_eventsim,
};

pub fn classify_eventsim(path: &str) -> Kind {
    if is_junk(path) {
        return Kind::Ignored("hidden or macOS metadata file");
    }
    let (stem, gzip) = strip_gz(path);
    if !stem.ends_with(".json") {
        return Kind::Ignored("not a .json or .json.gz file");
    }
    let stream = path.split('/').next().unwrap_or_default();
    match EVENTSIM_STREAMS.iter().find(|(name, _)| *name == stream) {
        Some((_, target)) => Kind::Records { target, gzip },
        None => Kind::Ignored(
            "not under listen_events/, page_view_events/, auth_events/ or status_change_events/",
        ),
    }
}

/// The day of a Deezer log `listen-YYYYMMDD.log[.gz]`, when its name is one.
pub fn log_day(path: &str) -> Option<NaiveDate> {
    let name = base_name(path);
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let digits = stem.strip_prefix("listen-")?.strip_suffix(".log")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

/// The log's day as `YYYY-MM-DD` (the bronze `day` column).
fn deezer_log_day(object: &str) -> String {
    log_day(object).map(|d| d.to_string()).unwrap_or_default()
}

pub fn classify_deezer(path: &str) -> Kind {
    if is_junk(path) {
        return Kind::Ignored("hidden or macOS metadata file");
    }
    if log_day(path).is_none() {
        return Kind::Ignored("not a listen-YYYYMMDD.log or .log.gz file of a real date");
    }
    Kind::Records {
        target: &DEEZER_LISTENS,
        gzip: path.ends_with(".gz"),
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Hidden files and macOS metadata (`.DS_Store`, AppleDouble `._*`, `__MACOSX/`).
fn is_junk(path: &str) -> bool {
    base_name(path).starts_with('.') || path.split('/').any(|p| p == "__MACOSX")
}

/// `name` without a final `.gz`, and whether it had one.
fn strip_gz(lower: &str) -> (&str, bool) {
    match lower.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (lower, false),
    }
}

pub fn classify_lastfm(path: &str) -> Kind {
    if is_junk(path) {
        return Kind::Ignored("hidden or macOS metadata file");
    }
    let lower = base_name(path).to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        return Kind::TarGz;
    }
    let (stem, gzip) = strip_gz(&lower);
    if !stem.ends_with(".tsv") {
        return Kind::Ignored("not a .tsv, .tsv.gz or .tar.gz file");
    }
    let target = if stem.starts_with("userid-profile") {
        &LASTFM_PROFILES
    } else {
        &LASTFM_PLAYS
    };
    Kind::Records { target, gzip }
}

pub fn classify_sparkify(path: &str) -> Kind {
    if is_junk(path) {
        return Kind::Ignored("hidden or macOS metadata file");
    }
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        return Kind::Zip;
    }
    let (stem, gzip) = strip_gz(&lower);
    if !stem.ends_with(".json") {
        return Kind::Ignored("not a .json or .zip file");
    }
    let in_folder = |names: [&str; 2]| lower.split('/').any(|p| names.contains(&p));
    if in_folder(["song_data", "song-data"]) {
        Kind::Records {
            target: &SPARKIFY_SONGS,
            gzip,
        }
    } else if in_folder(["log_data", "log-data"]) {
        Kind::Records {
            target: &SPARKIFY_EVENTS,
            gzip,
        }
    } else {
        Kind::Ignored("JSON outside song_data/ and log_data/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lastfm_objects_are_classified_by_name() {
        let plays = Kind::Records {
            target: &LASTFM_PLAYS,
            gzip: false,
        };
        assert_eq!(
            classify_lastfm("userid-timestamp-artid-artname-traid-traname.tsv"),
            plays
        );
        assert_eq!(
            classify_lastfm("more/plays-2009.tsv.gz"),
            Kind::Records {
                target: &LASTFM_PLAYS,
                gzip: true
            }
        );
        assert_eq!(
            classify_lastfm("userid-profile.tsv"),
            Kind::Records {
                target: &LASTFM_PROFILES,
                gzip: false
            }
        );
        assert_eq!(classify_lastfm("lastfm-dataset-1K.tar.gz"), Kind::TarGz);
        assert!(matches!(classify_lastfm("README.txt"), Kind::Ignored(_)));
        assert!(matches!(
            classify_lastfm("._userid-profile.tsv"),
            Kind::Ignored(_)
        ));
    }

    #[test]
    fn deezer_logs_are_named_by_a_real_day() {
        assert_eq!(
            classify_deezer("listen-20211201.log"),
            Kind::Records {
                target: &DEEZER_LISTENS,
                gzip: false
            }
        );
        assert_eq!(
            classify_deezer("2021/12/listen-20211201.log.gz"),
            Kind::Records {
                target: &DEEZER_LISTENS,
                gzip: true
            }
        );
        assert_eq!(
            deezer_log_day("s3://b/landing/deezer/listen-20211201.log"),
            "2021-12-01"
        );
        for other in [
            "listen-20210229.log",
            "listen-2021121.log",
            "listen-20211201.txt",
            "sample_listen-2021-12-01.txt",
            "listen-20211201.log.bak",
            "Listen-20211201.log",
            ".listen-20211201.log",
            "listen-2021120a.log",
        ] {
            assert!(
                matches!(classify_deezer(other), Kind::Ignored(_)),
                "{other}"
            );
        }
    }

    #[test]
    fn eventsim_objects_are_classified_by_their_stream_folder_at_any_depth() {
        assert_eq!(
            classify_eventsim("listen_events/2022/04/15/13_0.json.gz"),
            Kind::Records {
                target: &EVENTSIM_LISTENS,
                gzip: true
            }
        );
        assert_eq!(
            classify_eventsim("auth_events/part.json"),
            Kind::Records {
                target: &EVENTSIM_AUTHS,
                gzip: false
            }
        );
        for other in [
            "listen_events/2022/04/15/13_0.json.tmp",
            "other_events/x.json",
            "2022/listen_events/x.json",
            "listen_events/.x.json",
            "README.md",
        ] {
            assert!(
                matches!(classify_eventsim(other), Kind::Ignored(_)),
                "{other}"
            );
        }
    }

    #[test]
    fn sparkify_objects_are_classified_by_folder_and_junk_is_ignored() {
        assert_eq!(
            classify_sparkify("song_data/A/B/C/TRABCEI128F424C983.json"),
            Kind::Records {
                target: &SPARKIFY_SONGS,
                gzip: false
            }
        );
        assert_eq!(
            classify_sparkify("log_data/2018/11/2018-11-01-events.json"),
            Kind::Records {
                target: &SPARKIFY_EVENTS,
                gzip: false
            }
        );
        assert_eq!(classify_sparkify("song-data.zip"), Kind::Zip);
        for junk in [
            "__MACOSX/log_data/2018/11/._2018-11-01-events.json",
            "song_data/.DS_Store",
            "log_data/._x.json",
        ] {
            assert!(
                matches!(classify_sparkify(junk), Kind::Ignored(_)),
                "{junk}"
            );
        }
        assert!(matches!(
            classify_sparkify("notes/x.json"),
            Kind::Ignored(_)
        ));
    }
}
