"""The eventsim part of `make bench`: millions of events of the four streams, through the pipeline.

lake-gen writes a week of the four streams in Fluentd's layout (and what
gold.eventsim_activity_daily must hold); bronze, silver and gold run over them, each stage
measured; DuckDB computes the daily activity from the same raw JSON (bench/eventsim_peers.py).
The pipeline's table and DuckDB's answer must both equal the generator's.
"""

import json
import shutil
import subprocess

from bench import GIB, HERE, STAGES, gb, log, measure, rss, run_stages

START = "2022-04-11"


def events_for(args):
    """A week of the four streams, made once with lake-gen and kept under --data."""
    name = f"eventsim-{args.eventsim_users}users-{args.eventsim_days}days-seed{args.seed}"
    folder = args.data / name
    made = folder / ".made"
    if not made.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        log(f"generating {args.eventsim_days} days of {args.eventsim_users:,} users' events into "
            f"{folder} (once; kept)")
        m = measure([str(args.bin / "lake-gen"), "eventsim", str(folder / "eventsim"), "--start", START,
                     "--days", str(args.eventsim_days), "--users", str(args.eventsim_users),
                     "--seed", str(args.seed), "--expected", str(folder / "expected.json")],
                    args.data / f"{name}-gen")
        log(f"  lake-gen: {m['wall_s']:.1f} s")
        made.write_text("")
    return folder


def gold_activity(args, lake):
    """gold.eventsim_activity_daily as the generator reports days."""
    out = subprocess.run([str(args.bin / "lake"), "--lake", str(lake), "sql", "--format", "json",
                          "SELECT CAST(day AS VARCHAR) AS day, * EXCLUDE (day) "
                          "FROM gold.eventsim_activity_daily ORDER BY day"],
                         capture_output=True, text=True, check=True).stdout
    return {r.pop("day"): r for r in map(json.loads, out.splitlines()) if r}


def bench(args):
    data = events_for(args)
    expected = json.loads((data / "expected.json").read_text())
    work = args.work / "eventsim"
    shutil.rmtree(work, ignore_errors=True)
    landing, lake = work / "landing", work / "lake"
    landing.mkdir(parents=True)
    (landing / "eventsim").symlink_to((data / "eventsim").resolve())
    files = [f for f in (data / "eventsim").rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    log(f"eventsim: {expected['lines']:,} lines in {len(files)} objects ({size / 1e9:.2f} GB), "
        f"{args.eventsim_users:,} users over {args.eventsim_days} days")
    pipeline = run_stages(args, landing, lake, work, "all")
    if gold_activity(args, lake) != expected["days"]:
        raise SystemExit("bench: gold.eventsim_activity_daily differs from what lake-gen generated")
    out = work / "duckdb.json"
    duckdb = measure([args.python, str(HERE / "eventsim_peers.py"), "duckdb", str(data / "eventsim"),
                      "--out", str(out)], work / "duckdb")
    log(f"  duckdb: {duckdb['wall_s']:.1f} s, peak RSS {duckdb['peak_rss_bytes'] / GIB:.2f} GiB")
    if json.loads(out.read_text()) != expected["days"]:
        raise SystemExit("bench: DuckDB's daily activity differs from what lake-gen generated")
    return {
        "users": args.eventsim_users,
        "days": args.eventsim_days,
        "lines": expected["lines"],
        "events": sum(expected["events"].values()),
        "objects": len(files),
        "bytes": size,
        "lake_bytes": sum(f.stat().st_size for f in lake.rglob("*") if f.is_file()),
        "pipeline": pipeline,
        "duckdb": {k: v for k, v in duckdb.items() if k not in ("stdout", "stderr")},
    }


def markdown(d):
    """The eventsim part of the report."""
    md = [f"**eventsim**: {d['lines']:,} lines ({d['events']:,} distinct events) of {d['users']:,} users "
          f"over {d['days']} days in {d['objects']:,} objects ({d['bytes'] / 1e9:.2f} GB of JSON lines); "
          f"lake {gb(d['lake_bytes'])}; daily activity equal: pipeline, DuckDB, the generator's.", ""]
    md.append("| | s | events/s | peak RSS |")
    md.append("|---|---|---|---|")
    for s in [*STAGES, "total"]:
        m = d["pipeline"][s]
        md.append(f"| {'pipeline total' if s == 'total' else s} | {m['wall_s']:.1f} "
                  f"| {d['lines'] / m['wall_s']:,.0f} | {rss(m['peak_rss_bytes'])} |")
    m = d["duckdb"]
    md.append(f"| DuckDB, daily activity from the raw JSON | {m['wall_s']:.1f} "
              f"| {d['lines'] / m['wall_s']:,.0f} | {rss(m['peak_rss_bytes'])} |")
    return "\n".join(md)
