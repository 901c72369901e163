"""The Deezer part of `make bench`: a week of daily logs, then one more day.

The pipeline lands the first week (7 logs) through bronze, silver and gold, charting every day;
then an 8th log arrives and it runs again, doing one day's work. The peers (bench/deezer_peers.py:
DuckDB, Polars, pandas) do what the exercise's known solutions do: recompute the charts of the
last day from the 7 raw files, once for day 7 and once for day 8. Every chart file of the peers
must equal the pipeline's. Measured from the outside as the Last.fm part is (bench.measure).
"""

import shutil
from pathlib import Path

from bench import GIB, STAGES, gb, log, measure, rss, run_stages
START = "2021-12-01"


def logs_for(args):
    """Eight days of logs, made once with lake-gen and kept under --data."""
    name = f"deezer-{args.deezer_streams}x8-users{args.deezer_users}-seed{args.seed}"
    logs = args.data / name
    made = logs / ".made"
    if made.is_file():
        return logs
    shutil.rmtree(logs, ignore_errors=True)
    args.data.mkdir(parents=True, exist_ok=True)
    log(f"generating 8 days of {args.deezer_streams:,} streams into {logs} (once; kept)")
    cmd = [str(args.bin / "lake-gen"), "deezer", str(logs), "--start", START, "--days", "8",
           "--streams", str(args.deezer_streams), "--users", str(args.deezer_users),
           "--songs", str(args.deezer_songs), "--seed", str(args.seed)]
    m = measure(cmd, args.data / f"{name}-gen")
    log(f"  lake-gen: {m['wall_s']:.1f} s for 8 days ({m['wall_s'] / 8:.1f} s a day)")
    made.write_text("")
    return logs


def day_name(n):
    return f"listen-202112{n:02d}.log"


def run_peers(args, logs, date, work):
    peers = {}
    for engine in args.deezer_peers:
        out = work / f"{engine}-{date}"
        m = measure([args.python, str(Path(__file__).parent / "deezer_peers.py"), engine, str(logs),
                     "--date", date, "--out", str(out)], work / f"{engine}-{date}")
        peers[engine] = {k: v for k, v in m.items() if not isinstance(v, Path)} | {"out": str(out)}
        log(f"  {engine} ({date}): {m['wall_s']:.1f} s, peak RSS {m['peak_rss_bytes'] / GIB:.2f} GiB")
    return peers


def check_answers(lake, peers, date):
    """The peers' chart files must equal the pipeline's, byte for byte."""
    for kind in ("country", "user"):
        ours = (lake / "gold/deezer/charts" / f"{kind}_top50_{date}.txt").read_bytes()
        for engine, m in peers.items():
            theirs = (Path(m["out"]) / f"{kind}_top50_{date}.txt").read_bytes()
            if theirs != ours:
                raise SystemExit(f"bench: {engine}'s {kind} chart of {date} differs from the pipeline's")


def bench(args):
    logs = logs_for(args)
    work = args.work / "deezer"
    shutil.rmtree(work, ignore_errors=True)
    landing, lake = work / "landing", work / "lake"
    (landing / "deezer").mkdir(parents=True)
    week = [day_name(n) for n in range(1, 8)]
    for name in week:
        (landing / "deezer" / name).symlink_to((logs / name).resolve())
    size = sum((logs / n).stat().st_size for n in week)
    log(f"deezer: 7 days of {args.deezer_streams:,} streams ({size / 1e9:.2f} GB), "
        f"{args.deezer_users:,} users; peers: {', '.join(args.deezer_peers)}")
    first = run_stages(args, landing, lake, work, "week")
    week_peers = run_peers(args, logs_for_window(logs, work, 7), "20211207", work)
    check_answers(lake, week_peers, "20211207")
    (landing / "deezer" / day_name(8)).symlink_to((logs / day_name(8)).resolve())
    day = run_stages(args, landing, lake, work, "day8")
    day_peers = run_peers(args, logs_for_window(logs, work, 8), "20211208", work)
    check_answers(lake, day_peers, "20211208")
    lake_bytes = sum(f.stat().st_size for f in lake.rglob("*") if f.is_file())
    return {
        "streams_per_day": args.deezer_streams,
        "users": args.deezer_users,
        "songs": args.deezer_songs,
        "week_bytes": size,
        "lake_bytes": lake_bytes,
        "first_week": first,
        "next_day": day,
        "peers_week": week_peers,
        "peers_next_day": day_peers,
        "answers_equal": sorted(week_peers),
    }


def logs_for_window(logs, work, last):
    """A folder with the logs of the 7 days ending on day `last`, as a peer reads them."""
    folder = work / f"window-{last}"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(last - 6, last + 1):
        target = folder / day_name(n)
        if not target.exists():
            target.symlink_to((logs / day_name(n)).resolve())
    return folder


def markdown(d):
    """The Deezer part of the report."""
    md = [f"**Deezer**: 7 days of {d['streams_per_day']:,} streams a day ({d['week_bytes'] / 1e9:.2f} GB), "
          f"{d['users']:,} users, {d['songs']:,} songs, then an 8th day; lake {gb(d['lake_bytes'])}; "
          f"chart files equal: pipeline, {', '.join(d['answers_equal'])}.", ""]
    head = ["", "first week s", "peak RSS", "next day s", "peak RSS"]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for s in [*STAGES, "total"]:
        a, b = d["first_week"][s], d["next_day"][s]
        md.append(f"| {'pipeline total' if s == 'total' else s} | {a['wall_s']:.1f} | {rss(a['peak_rss_bytes'])} "
                  f"| {b['wall_s']:.1f} | {rss(b['peak_rss_bytes'])} |")
    for engine in d["peers_week"]:
        a, b = d["peers_week"][engine], d["peers_next_day"][engine]
        md.append(f"| {engine} (7 raw files) | {a['wall_s']:.1f} | {rss(a['peak_rss_bytes'])} "
                  f"| {b['wall_s']:.1f} | {rss(b['peak_rss_bytes'])} |")
    md.append("")
    for name, value, limit in targets(d):
        md.append(f"- {name}: {value:.2f} — {'met' if value <= limit else f'missed by {value / limit:.2f}×'}")
    return "\n".join(md)


def targets(d):
    out = []
    if "polars" in d["peers_week"]:
        out.append(("first week (bronze + silver + gold) ≤ 1.0× Polars",
                    d["first_week"]["total"]["wall_s"] / d["peers_week"]["polars"]["wall_s"], 1.0))
        out.append(("next day (bronze + silver + gold) ≤ 0.25× Polars' recompute",
                    d["next_day"]["total"]["wall_s"] / d["peers_next_day"]["polars"]["wall_s"], 0.25))
    peak = max(d["first_week"]["total"]["peak_rss_bytes"], d["next_day"]["total"]["peak_rss_bytes"])
    out.append(("peak RSS of every job ≤ 2 GiB", peak / GIB, 2.0))
    return out
