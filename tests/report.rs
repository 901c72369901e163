//! The lake's report as a person sees it: every source landed, the page opened in headless
//! Chromium, every panel drawn, nothing fetched from the network.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lake_tests::*;

/// Chromium: `LAKE_TEST_CHROMIUM`, or `chromium` on PATH (tests/run.sh installs Debian's).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("LAKE_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"));
    let there = Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if there {
        Some(path)
    } else {
        unavailable("no Chromium (`make test` installs Debian's chromium)")
    }
}

/// A page opened in headless Chromium: its screenshot, and the requests it sent to the network
/// (every request goes through a proxy that notes and drops them).
struct Seen {
    png: Vec<u8>,
    /// The first line of each request the proxy received.
    requests: Vec<String>,
}

fn open_in_chromium(chromium: &Path, page: &Path, dir: &TempDir) -> Seen {
    let proxy = TcpListener::bind("127.0.0.1:0").expect("proxy port");
    let port = proxy.local_addr().expect("proxy address").port();
    proxy.set_nonblocking(true).expect("nonblocking");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let counter = {
        let (requests, done) = (requests.clone(), done.clone());
        std::thread::spawn(move || {
            while done.load(Ordering::SeqCst) == 0 {
                match proxy.accept() {
                    Ok((mut s, _)) => {
                        let mut buf = [0u8; 1024];
                        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                        let n = s.read(&mut buf).unwrap_or(0);
                        // a connection that asks for nothing (Chromium preconnects to its
                        // proxy) fetches nothing; any request line counts
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if let Some(line) = text.lines().next().filter(|l| !l.is_empty())
                            && let Ok(mut r) = requests.lock()
                        {
                            r.push(line.to_string());
                        }
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        })
    };
    let shot = dir.join(&format!(
        "{}.png",
        page.file_stem().and_then(|s| s.to_str()).unwrap_or("page")
    ));
    let profile = dir.join("chromium-profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            // the browser's own services, which would call home past the proxy's check
            "--disable-sync",
            "--disable-quic",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--disable-component-extensions-with-background-pages",
            "--no-pings",
            "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
            "--hide-scrollbars",
            "--window-size=1400,5200",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--proxy-server=http://127.0.0.1:{port}"),
            "--proxy-bypass-list=<-loopback>",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("run chromium");
    done.store(1, Ordering::SeqCst);
    let _ = counter.join();
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Seen {
        png: std::fs::read(&shot).expect("chromium wrote the screenshot"),
        requests: requests.lock().map(|r| r.clone()).unwrap_or_default(),
    }
}

/// Whether a request is Chromium's own, not a page's: its component updater, network time and
/// account services call home even with background networking off. Any other host, a font or
/// script service among them, counts as the page's.
fn browser_own(request: &str) -> bool {
    const SERVICES: [&str; 4] = [
        "update.googleapis.com",
        "redirector.gvt1.com",
        "clients2.google.com",
        "accounts.google.com",
    ];
    let target = request.split_whitespace().nth(1).unwrap_or_default();
    let host = target
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    SERVICES.contains(&host)
}

/// The screenshot's pixels as RGB.
fn pixels(png: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, rgb)
}

/// How many pixels are close to `colour`.
fn near(rgb: &[[u8; 3]], colour: [u8; 3]) -> usize {
    rgb.iter()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= 12))
        .count()
}

/// A lake with every source in it, built by the three jobs over generated landing data.
fn lake_of_every_source(dir: &TempDir) -> PathBuf {
    let landing = dir.join("landing");
    lake_gen(
        "lastfm",
        &landing.join("lastfm"),
        &["--rows", "20000", "--users", "20"],
    );
    lake_gen("sparkify", &landing.join("sparkify"), &["--events", "4000"]);
    lake_gen(
        "deezer",
        &landing.join("deezer"),
        &[
            "--days",
            "7",
            "--streams",
            "5000",
            "--users",
            "300",
            "--songs",
            "800",
        ],
    );
    lake_gen(
        "eventsim",
        &landing.join("eventsim"),
        &["--days", "4", "--users", "60"],
    );
    let args = local_args(dir, &landing);
    pipeline(dir.path(), &strs(&args), &[]);
    dir.join("lake")
}

#[test]
fn the_report_draws_every_panel_in_chromium_and_fetches_nothing() {
    let Some(chromium) = chromium() else { return };
    let dir = TempDir::new("report");
    let lake = lake_of_every_source(&dir);
    let page = lake.join("gold/report/index.html");
    let html = std::fs::read_to_string(&page).expect("gold wrote the report");
    for panel in lake_report::PANELS {
        assert!(
            html.contains(&lake_report::svg::escape(panel.title)),
            "panel '{}' is in the report",
            panel.title
        );
    }
    // nothing that loads: no scripts, frames or images, no attribute that points anywhere
    for outside in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "src=", "href=", "url(",
        "@import",
    ] {
        assert!(!html.contains(outside), "the page has {outside}");
    }
    let seen = open_in_chromium(&chromium, &page, &dir);
    let fetched: Vec<&String> = seen.requests.iter().filter(|r| !browser_own(r)).collect();
    assert!(fetched.is_empty(), "the report fetched {fetched:?}");
    let (width, height, rgb) = pixels(&seen.png);
    assert!(width >= 1400 && height >= 5000, "{width}×{height}");
    // drawn, not blank: the first series' blue and the second's orange fill thousands of pixels
    let blue = near(&rgb, [0x1f, 0x77, 0xb4]);
    let orange = near(&rgb, [0xff, 0x7f, 0x0e]);
    assert!(blue > 20_000, "{blue} pixels of the first series");
    assert!(orange > 2_000, "{orange} pixels of the second series");
    if let Ok(path) = std::env::var("LAKE_REPORT_SCREENSHOT") {
        std::fs::write(&path, &seen.png).expect("keep the screenshot");
    }
}

#[test]
fn a_page_that_fetches_something_is_caught() {
    // the check above would pass on a browser that cannot reach the proxy: this page makes a
    // request, and the proxy must see it
    let Some(chromium) = chromium() else { return };
    let dir = TempDir::new("report-control");
    let page = dir.join("fetches.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"http://example.invalid/x.png\"></body></html>",
    )
    .expect("write page");
    let seen = open_in_chromium(&chromium, &page, &dir);
    assert!(
        seen.requests.iter().any(|r| r.contains("example.invalid")),
        "the proxy saw no request for the image: {:?}",
        seen.requests
    );
}

#[test]
fn lake_report_writes_the_report_again_on_demand() {
    let dir = TempDir::new("report-again");
    let lake = lake_of_every_source(&dir);
    let page = lake.join("gold/report/index.html");
    std::fs::remove_file(&page).expect("remove the report");
    let copy = dir.join("copy.html");
    let ran = run(
        "lake",
        dir.path(),
        &[
            "--lake",
            &lake.display().to_string(),
            "report",
            "--out",
            &copy.display().to_string(),
        ],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("gold/report/index.html"),
        "{}",
        ran.stdout
    );
    let again = std::fs::read_to_string(&page).expect("written again");
    assert_eq!(std::fs::read_to_string(&copy).ok(), Some(again.clone()));
    assert!(again.contains("Deezer") && again.contains("eventsim"));
}
