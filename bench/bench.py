#!/usr/bin/env python3
"""`make bench`: the pipeline (bronze, silver, gold; release build) against peer engines that
answer the same question from the raw Last.fm 1K TSV (bench/peers.py), on the same file, on the
same machine, in one run.

For every scale (a share of --rows; 1 = the real data set's 19,150,868 plays) it makes the
landing data with lake-gen (or takes --input; gzip-compressed when the plain TSV and the lake
would not both fit on the disk, as bronze lands .tsv.gz as it is; a scale that does not fit even
so is skipped with the arithmetic in the report), then repeats --repeat times: a fresh lake, then
bronze, silver and gold one after the other, then each peer. Each process is measured from
the outside: wall seconds, peak RSS (getrusage of the child), and bytes read and written
(rchar/wchar of /proc/PID/io: every read(2)/write(2), page cache or not; mmap reads are not
counted). Every engine's answer is checked equal to the pipeline's. The like-for-like peer
(medallion_duckdb.py, "duckdb-lake") builds the same lake with DuckDB alone, Parquet layer by
layer; the rows of each of its tables are checked equal to the pipeline's too, and the pipeline's
stages are set against its layers. The report gives the median of the repeats; the JSON keeps
every measurement.

Deezer (bench_deezer.py): a week of daily logs then one more day through the pipeline, against
DuckDB, Polars and pandas recomputing the last day's charts from the 7 raw files
(deezer_peers.py), every chart file checked equal.

eventsim (bench_eventsim.py): a week of the four streams (millions of events) through the
pipeline, each stage timed, against DuckDB computing the daily activity from the same raw JSON
(eventsim_peers.py); both answers checked equal to the generator's.

Writes bench/results/<time>-<rows>.json and .md, prints the table, and with --readme
replaces the README's performance table.
"""

import argparse
import gzip
import importlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FULL_ROWS = 19_150_868
USERS = 992
PLAYS = "userid-timestamp-artid-artname-traid-traname.tsv"
PROFILES = "userid-profile.tsv"
STAGES = ["bronze", "silver", "gold"]
GIB = 1 << 30
# peers whose work runs in processes the measured one does not wait for
OUTSIDE_THE_PROCESS = {"pyspark"}
# the like-for-like peer: the same Last.fm lake (bronze, silver, gold as Parquet) built by DuckDB
# alone (medallion_duckdb.py), where the other peers only answer the question from the raw TSV
LAKE_PEER = "duckdb-lake"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def measure(cmd, logs, env=None):
    """Runs cmd to the end (stdout and stderr to files under `logs`) and returns what the OS
    says about it."""
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    start = time.perf_counter()
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e, env=env)
        # wait without reaping, so that /proc/PID/io can still be read
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        io = {}
        try:
            for line in Path(f"/proc/{p.pid}/io").read_text().splitlines():
                k, v = line.split(":")
                io[k] = int(v)
        except OSError:
            pass
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = err.read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} exited {p.returncode}:\n" + "\n".join(tail))
    return {
        "wall_s": round(wall, 3),
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "read_bytes": io.get("rchar"),
        "written_bytes": io.get("wchar"),
        "stdout": out,
        "stderr": err,
    }


def run_record(stdout):
    """The run record a job prints as its last stdout line."""
    lines = stdout.read_text().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def count_lines(path):
    n = 0
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        dst.symlink_to(src.resolve())


def landing_for(args, scale, gzip, months=None):
    """The landing folder (with lastfm/) for a scale, made once and kept under --data, and what
    made it. With `gzip` the plays are written gzip-compressed (bronze lands .tsv.gz as it is);
    with `months` they are spread over that many months (one month partition each)."""
    if args.input and scale == 1:
        src = Path(args.input)
        landing = args.work / "input-landing"
        shutil.rmtree(landing, ignore_errors=True)
        link(src, landing / "lastfm" / PLAYS)
        if (src.parent / PROFILES).is_file():
            link(src.parent / PROFILES, landing / "lastfm" / PROFILES)
        return landing, f"{src} (given)"
    rows = round(args.rows * scale)
    landing = landing_dir(args, rows, months, gzip)
    made = landing / ".made"
    made_by = f"lake-gen lastfm --rows {rows} --users {USERS} --seed {args.seed}" + (
        f" --months {months}" if months else "")
    if made.is_file():
        return landing, made_by + (", gzip -1" if gzip else "")
    shutil.rmtree(landing, ignore_errors=True)
    log(f"generating {rows:,} plays into {landing} (once; kept for later runs)")
    gen = [str(args.bin / "lake-gen"), "lastfm", str(landing / "lastfm"), "--rows", str(rows),
           "--users", str(USERS), "--seed", str(args.seed)] + (["--months", str(months)] if months else [])
    if not gzip:
        subprocess.run(gen, check=True, stdout=subprocess.DEVNULL)
    else:
        # lake-gen writes the plays into a named pipe that gzip empties: the plain TSV never
        # touches the disk
        fifo = landing / "lastfm" / PLAYS
        fifo.parent.mkdir(parents=True)
        os.mkfifo(fifo)
        with open(fifo.with_name(PLAYS + ".gz"), "wb") as out:
            g = subprocess.Popen(gen, stdout=subprocess.DEVNULL)
            with open(fifo, "rb") as pipe:
                subprocess.run(["gzip", "-1", "-c"], stdin=pipe, stdout=out, check=True)
            if g.wait() != 0:
                raise SystemExit(f"bench: {' '.join(gen)} exited {g.returncode}")
        fifo.unlink()
        made_by += ", gzip -1"
    made.write_text("")
    return landing, made_by


def landing_dir(args, rows, months, gzip):
    return args.data / (f"lastfm-{rows}-seed{args.seed}" + (f"-months{months}" if months else "")
                        + ("-gz" if gzip else ""))


def plays_file(landing):
    """The plays file of a landing folder, plain or gzip-compressed."""
    plain = landing / "lastfm" / PLAYS
    return plain if plain.exists() else plain.with_name(PLAYS + ".gz")


def run_pipeline(args, landing, work, i):
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    answer = work / f"pipeline-{i}.tsv"
    env = dict(os.environ, LAKE_LOG_FORMAT="text", NO_COLOR="1")
    env.pop("LAKE_CONFIG", None)
    common = ["--lake", str(lake), "--landing", str(landing)]
    if args.memory_limit:
        common += ["--memory-limit", args.memory_limit]
    stages, tables = {}, {}
    for stage in STAGES:
        cmd = [str(args.bin / stage), *common] + (["--out", str(answer)] if stage == "gold" else [])
        m = measure(cmd, work / f"{stage}-{i}", env)
        rec = run_record(m["stdout"])
        m["rows_in"] = rec.get("rows_in")
        m["rows_out"] = rec.get("rows_out")
        m["rows_quarantined"] = rec.get("rows_quarantined")
        stages[stage] = m
        tables.update({o["table"]: o["rows"] for o in rec.get("outputs", [])})
    stages["tables"] = tables
    stages["lake_bytes"] = tree_bytes(lake)
    stages["bronze_bytes"] = tree_bytes(lake / "bronze")
    return stages, answer.read_text()


def tree_bytes(root):
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def run_increment(args, landing, work):
    """Lands a share (--increment) of new plays next to the landed ones (a second file, made by
    lake-gen with another seed: the month after the data ends, as a next delivery would be) and
    runs the three jobs again on the lake of the last repeat: the incremental run, measured like
    a full one. The file is removed afterwards."""
    rows = max(1, round(args.rows * args.increment))
    made = work / "increment"
    shutil.rmtree(made, ignore_errors=True)
    subprocess.run([str(args.bin / "lake-gen"), "lastfm", str(made), "--rows", str(rows), "--users", str(USERS),
                    "--seed", str(args.seed + 1), "--start", "2009-06-20", "--months", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    extra = landing / "lastfm" / "plays-increment.tsv"
    link(made / PLAYS, extra)
    try:
        stages = run_stages(args, landing, work / "lake", work, "increment")
    finally:
        extra.unlink()
        shutil.rmtree(made, ignore_errors=True)
    stages["plays"] = rows
    return stages


def run_stages(args, landing, lake, work, tag):
    """Runs bronze, silver and gold once over `landing` into `lake`, each measured."""
    common = ["--lake", str(lake), "--landing", str(landing)]
    if args.memory_limit:
        common += ["--memory-limit", args.memory_limit]
    stages = {}
    for stage in STAGES:
        m = measure([str(args.bin / stage), *common], work / f"{stage}-{tag}")
        rec = run_record(m["stdout"])
        m["rows_in"] = rec.get("rows_in")
        m["rows_out"] = rec.get("rows_out")
        stages[stage] = {k: v for k, v in m.items() if not isinstance(v, Path)}
    stages["total"] = {
        "wall_s": sum(stages[s]["wall_s"] for s in STAGES),
        "peak_rss_bytes": max(stages[s]["peak_rss_bytes"] for s in STAGES),
        "read_bytes": sum(stages[s]["read_bytes"] or 0 for s in STAGES),
        "written_bytes": sum(stages[s]["written_bytes"] or 0 for s in STAGES),
    }
    log(f"  pipeline ({tag}): " + ", ".join(f"{s} {stages[s]['wall_s']:.1f} s" for s in STAGES)
        + f", peak RSS {stages['total']['peak_rss_bytes'] / GIB:.2f} GiB")
    return stages


def run_peer(args, engine, landing, work, i):
    if engine == LAKE_PEER:
        return run_lake_peer(args, landing, work, i)
    plays = plays_file(landing)
    answer = work / f"{engine}-{i}.tsv"
    m = measure([args.python, str(HERE / "peers.py"), engine, str(plays), "--out", str(answer)],
                work / f"{engine}-{i}")
    said = re.search(r": ([0-9.]+) s", m["stderr"].read_text())
    m["engine_s"] = float(said.group(1)) if said else None
    return m, answer.read_text()


def run_lake_peer(args, landing, work, i):
    """The like-for-like peer on the landing folder, with the jobs' default memory limit: its
    measurements (with the seconds of each layer and the rows of each table it reports) and
    its answer."""
    out = work / f"{LAKE_PEER}-{i}"
    shutil.rmtree(out, ignore_errors=True)
    m = measure([args.python, str(HERE / "medallion_duckdb.py"), str(landing), str(out),
                 "--memory-limit", args.memory_limit or "1GB"], work / f"{LAKE_PEER}-{i}")
    said = run_record(m["stdout"])
    for layer, secs in said.get("seconds", {}).items():
        m[f"{layer}_s"] = secs
    m["tables"] = said.get("rows", {})
    answer = (out / "gold" / "top_songs.tsv").read_text()
    shutil.rmtree(out, ignore_errors=True)
    return m, answer


def check_tables(pipeline, peer_runs, work):
    """Every table the like-for-like peer reports has the rows of the pipeline's table."""
    for m in peer_runs.get(LAKE_PEER, [])[:1]:
        differ = {t: (pipeline.get(t), n) for t, n in m["tables"].items() if pipeline.get(t) != n}
        if differ:
            raise SystemExit(f"bench: {LAKE_PEER}'s tables differ from the pipeline's (pipeline, peer): "
                             f"{differ} (see {work})")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs):
    """The median of every measurement over the repeats."""
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float)) or runs[0][k] is None]
    return {k: median([r[k] for r in runs]) for k in keys}


# Disk a scale needs, per byte of plays TSV: the file itself (a quarter of it with gzip -1), bronze
# and silver (about a quarter of it each, Parquet), a spill under the memory limit, and as much
# again for margin (the disk is shared).
LAKE_PER_INPUT_BYTE = 1.0
GZIP_RATIO = 0.25
TSV_BYTES_PER_PLAY = 133


def disk_plan(args, scale, months=None):
    """How a scale's landing data is stored, or why the scale cannot run on this disk:
    ("plain" | "gzip" | None, why)."""
    if args.input and scale == 1:
        return "plain", None
    rows = round(args.rows * scale)
    tsv = rows * TSV_BYTES_PER_PLAY
    args.data.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.data).free
    for form, data in (("plain", tsv), ("gzip", tsv * GZIP_RATIO)):
        made = (landing_dir(args, rows, months, form == "gzip") / ".made").is_file()
        if made or (data + tsv * LAKE_PER_INPUT_BYTE) <= free:
            return form, None
    need = tsv * (GZIP_RATIO + LAKE_PER_INPUT_BYTE)
    return None, (f"needs about {need / 1e9:.0f} GB of free disk (gzip-compressed data, lake and spill), "
                  f"{free / 1e9:.0f} GB free")


def bench_scale(args, scale, months=None):
    """One scale (or, with `months`, the many-partitions case at that scale) measured."""
    case = f"{round(args.rows * scale):,} plays over {months:,} months" if months else None
    form, short = disk_plan(args, scale, months)
    if short:
        log(f"scale {scale:g}×: skipped: {short}")
        return {"scale": scale, "case": case, "skipped": short}
    landing, made_by = landing_for(args, scale, gzip=form == "gzip", months=months)
    plays = plays_file(landing)
    lines = count_lines(plays)
    size = plays.stat().st_size
    work = args.work / (f"months-{months}" if months else f"scale-{scale:g}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    peers = args.peers if scale <= args.peer_max_scale else []
    if months:
        # the many-partitions case is about the jobs' memory; the answer-only peers check it
        peers = [p for p in args.peers if p != LAKE_PEER]
    repeat = args.repeat if scale <= 1 else args.repeat_large
    log(f"scale {scale:g}×: {lines:,} lines, {size / 1e9:.2f} GB; {repeat} repeat(s); peers: {', '.join(peers) or 'none'}")
    pipeline_runs, peer_runs, answers = [], {p: [] for p in peers}, {}
    for i in range(1, repeat + 1):
        stages, answer = run_pipeline(args, landing, work, i)
        answers.setdefault("pipeline", answer)
        total = {k: sum(stages[s][k] or 0 for s in STAGES) for k in ("wall_s", "read_bytes", "written_bytes")}
        total["peak_rss_bytes"] = max(stages[s]["peak_rss_bytes"] for s in STAGES)
        stages["total"] = total
        pipeline_runs.append(stages)
        log(f"  run {i}: " + ", ".join(f"{s} {stages[s]['wall_s']:.1f} s" for s in STAGES)
            + f", total {total['wall_s']:.1f} s")
        for p in peers:
            m, answer = run_peer(args, p, landing, work, i)
            peer_runs[p].append(m)
            answers.setdefault(p, answer)
            log(f"  run {i}: {p} {m['wall_s']:.1f} s")
    mismatched = [p for p, a in answers.items() if a != answers["pipeline"]]
    if mismatched:
        raise SystemExit(f"bench: the answers of {', '.join(mismatched)} differ from the pipeline's "
                         f"(see {work}/*.tsv)")
    check_tables(pipeline_runs[0]["tables"], peer_runs, work)
    increment = run_increment(args, landing, work) if scale == 1 and not months and args.increment else None
    clean = lambda m: {k: v for k, v in m.items() if not isinstance(v, Path)}
    result = {
        "scale": scale,
        "case": case,
        "increment": increment,
        "input": {"file": str(plays), "made_by": made_by, "lines": lines, "bytes": size},
        "answer": answers["pipeline"],
        "answers_equal": sorted(answers),
        "tables": pipeline_runs[0]["tables"],
        "pipeline": {s: summarize([r[s] for r in pipeline_runs]) for s in [*STAGES, "total"]},
        "lake_bytes": median([r["lake_bytes"] for r in pipeline_runs]),
        "bronze_bytes": median([r["bronze_bytes"] for r in pipeline_runs]),
        "peers": {p: summarize(runs) for p, runs in peer_runs.items()},
        "runs": {"pipeline": [{s: clean(r[s]) if isinstance(r[s], dict) else r[s] for s in r} for r in pipeline_runs],
                 **{p: [clean(m) for m in runs] for p, runs in peer_runs.items()}},
    }
    result["ratios"] = ratios(result)
    return result


def ratios(result):
    """Pipeline over peer, wall time: each stage and the total against a peer's whole run, and
    against the like-for-like peer also layer by layer (the seconds it reports of each)."""
    out = {}
    for p, peer in result["peers"].items():
        for s in [*STAGES, "total"]:
            theirs = peer.get(f"{s}_s") or peer["wall_s"]
            out[f"{s}/{p}"] = round(result["pipeline"][s]["wall_s"] / theirs, 3)
    return out


def machine():
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    model = ""
    try:
        model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                      if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_bytes": mem, "cpu": model, "os": platform.platform()}


def versions(args):
    v = {}
    code = "import importlib.metadata as m, sys; [print(p, m.version(p)) for p in sys.argv[1:]]"
    packages = [p for p in args.peers if p != LAKE_PEER]
    got = subprocess.run([args.python, "-c", code, *packages], capture_output=True, text=True)
    for line in got.stdout.splitlines():
        name, version = line.split(" ", 1)
        v[name] = version
    for tool, cmd in [("rustc", ["rustc", "--version"]), ("commit", ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])]:
        try:
            v[tool] = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    return v


# ---------------------------------------------------------------------------------------------
# the report

def gb(n):
    return "" if n is None else f"{n / 1e9:.2f} GB"


def rss(n):
    return "" if n is None else f"{n / GIB:.2f} GiB"


def rows_per_s(lines, wall):
    return "" if not wall else f"{lines / wall / 1e6:.2f} M"


def table(result):
    lines = result["input"]["lines"]
    head = ["", "wall s", "plays/s", "peak RSS", "read", "written"]
    rows = []
    for s in [*STAGES, "total"]:
        m = result["pipeline"][s]
        rows.append(["pipeline " + s if s == "total" else s, f"{m['wall_s']:.1f}", rows_per_s(lines, m["wall_s"]),
                     rss(m["peak_rss_bytes"]), gb(m["read_bytes"]), gb(m["written_bytes"])])
    for p, m in result["peers"].items():
        # PySpark's work happens in a JVM that its Python driver starts but does not wait for, so
        # neither getrusage nor /proc/PID/io of the measured process covers it
        seen = p not in OUTSIDE_THE_PROCESS
        rows.append([p, f"{m['wall_s']:.1f}", rows_per_s(lines, m["wall_s"]),
                     rss(m["peak_rss_bytes"]) if seen else "(JVM not measured)",
                     gb(m["read_bytes"]) if seen else "—", gb(m["written_bytes"]) if seen else "—"])
    return head, rows


def targets(result, memory_limit):
    """The issue's targets at this scale, each with the measured value and whether it was met."""
    out = []
    p = result["pipeline"]
    if LAKE_PEER in result["peers"]:
        d = result["peers"][LAKE_PEER]["wall_s"]
        out.append(("bronze + silver + gold ≤ 1.0× the like-for-like DuckDB lake", p["total"]["wall_s"] / d, 1.0))
    if "duckdb" in result["peers"]:
        d = result["peers"]["duckdb"]["wall_s"]
        out.append(("bronze + silver + gold ≤ 2.0× DuckDB's answer", p["total"]["wall_s"] / d, 2.0))
        out.append(("silver ≤ 0.8× DuckDB's answer", p["silver"]["wall_s"] / d, 0.8))
    rss_limit = 1.0 if result.get("case") else 2.0
    out.append((f"peak RSS of every job ≤ {rss_limit:g} GiB (memory limit {memory_limit or 'the default'})",
                p["total"]["peak_rss_bytes"] / GIB, rss_limit))
    if result.get("bronze_bytes"):
        moved = (p["silver"]["read_bytes"] or 0) + (p["silver"]["written_bytes"] or 0)
        out.append(("silver's bytes read + written ≤ 3× its bronze", moved / result["bronze_bytes"], 3.0))
    if result.get("increment"):
        out.append((f"a run adding {result['increment']['plays']:,} plays (1%) ≤ 5% of a full run",
                    result["increment"]["total"]["wall_s"] / p["total"]["wall_s"], 0.05))
    return out


def growth(ran):
    """The 10× total against ten times the 1× total, when both ran."""
    by = {r["scale"]: r for r in ran if not r.get("case")}
    if 1 in by and 10 in by:
        return by[10]["pipeline"]["total"]["wall_s"] / by[1]["pipeline"]["total"]["wall_s"]
    return None


def label(r):
    return r.get("case") or f"{r['scale']:g}× scale"


def markdown(report):
    md = []
    m = report["machine"]
    md.append(f"Measured {report['finished_at'][:10]} on {m['cores']} cores, {m['memory_bytes'] / GIB:.0f} GiB "
              f"({m['cpu'] or 'unknown CPU'}); commit {report['versions'].get('commit', '?')}, "
              f"{report['repeat']} repeats (median), memory limit {report['memory_limit'] or 'the default (1GiB)'}. "
              + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if k not in ("commit",)) + ".")
    for r in report["scales"]:
        if "skipped" in r:
            md.append("")
            md.append(f"**{label(r)}**: not run on this machine: {r['skipped']}.")
            continue
        i = r["input"]
        md.append("")
        md.append(f"**{label(r)}**: {i['lines']:,} lines, {i['bytes'] / 1e9:.2f} GB ({i['made_by']}); "
                  f"lake {gb(r['lake_bytes'])} (bronze {gb(r.get('bronze_bytes'))}); "
                  f"answers equal: {', '.join(r['answers_equal'])}.")
        if r.get("increment"):
            inc = r["increment"]
            md.append("")
            md.append(f"Then {inc['plays']:,} new plays (1%) in a second file, the three jobs again: "
                      + ", ".join(f"{s} {inc[s]['wall_s']:.1f} s" for s in STAGES)
                      + f", total {inc['total']['wall_s']:.1f} s, peak RSS {rss(inc['total']['peak_rss_bytes'])}.")
        md.append("")
        head, rows = table(r)
        md.append("| " + " | ".join(head) + " |")
        md.append("|" + "---|" * len(head))
        for row in rows:
            md.append("| " + " | ".join(row) + " |")
        if r["ratios"]:
            md.append("")
            md.append("Ratios pipeline/peer (wall): " + ", ".join(f"{k} {v:.2f}×" for k, v in r["ratios"].items()) + ".")
        md.append("")
        for name, value, limit in targets(r, report["memory_limit"]):
            md.append(f"- {name}: {value:.2f} — {'met' if value <= limit else f'missed by {value / limit:.2f}×'}")
    ran = [r for r in report["scales"] if "skipped" not in r]
    if len(ran) > 1:
        md.append("")
        md.append("Growth with input (pipeline total): " + ", ".join(
            f"{label(r)} {r['pipeline']['total']['wall_s']:.1f} s "
            f"({r['input']['lines'] / r['pipeline']['total']['wall_s'] / 1e6:.2f} M plays/s)" for r in ran) + ".")
        g = growth(ran)
        if g is not None:
            md.append("")
            md.append(f"- the 10× total ≤ 10.5× the 1× total: {g:.2f}× — "
                      + ("met" if g <= 10.5 else f"missed by {g / 10.5:.2f}×"))
    return "\n".join(md) + "\n"


def print_table(report):
    for r in report["scales"]:
        if "skipped" in r:
            print(f"\n{label(r)}: skipped: {r['skipped']}")
            continue
        head, rows = table(r)
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        print(f"\n{label(r)}: {r['input']['lines']:,} lines, {gb(r['input']['bytes'])}")
        for row in [head, *rows]:
            print("  ".join(str(x).rjust(w) if j else str(x).ljust(w) for j, (x, w) in enumerate(zip(row, widths))))
        for k, v in r["ratios"].items():
            print(f"  {k}: {v:.2f}×")
        for name, value, limit in targets(r, report["memory_limit"]):
            print(f"  target {name}: {value:.2f} {'met' if value <= limit else 'MISSED'}")


def update_readme(section, md):
    """Replaces the README's `<!-- SECTION:begin -->` … `<!-- SECTION:end -->` with `md`."""
    readme = REPO / "README.md"
    text = readme.read_text()
    new, n = re.subn(rf"(<!-- {section}:begin -->\n).*?(<!-- {section}:end -->)",
                     lambda m: m.group(1) + md + m.group(2), text, flags=re.S)
    if n == 0:
        raise SystemExit(f"bench: README.md has no <!-- {section}:begin --> … <!-- {section}:end --> section")
    readme.write_text(new)


# The sources measured after Last.fm, each by its module bench_<source>.py: bench(args) measures,
# markdown(result) reports. Imported when used (they import this module).
PARTS = ["deezer", "eventsim"]


def part(source):
    return importlib.import_module(f"bench_{source}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=FULL_ROWS, help="plays at scale 1 (default: the real data set's)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--input", help="a Last.fm 1K plays TSV to use at scale 1 instead of generated data "
                    "(e.g. from ../shared/bench/gen_lastfm.py); its folder's userid-profile.tsv is landed too")
    ap.add_argument("--scales", help="comma-separated shares of --rows (default: 0.1,1,10; 1 with --input)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats per measurement at scales ≤ 1 (median)")
    ap.add_argument("--repeat-large", type=int, default=1, help="repeats at scales > 1")
    ap.add_argument("--peer-max-scale", type=float, default=1, help="run the peers at scales up to this")
    ap.add_argument("--all-peers", action="store_true", help="also pandas and PySpark")
    ap.add_argument("--spread", default="20000000:2400",
                    help="PLAYS:MONTHS: also that many plays spread over that many month partitions ('' for none)")
    ap.add_argument("--increment", type=float, default=0.01,
                    help="at 1×, then land this share of new plays and run again (0 for none)")
    ap.add_argument("--memory-limit", default="", help="the jobs' --memory-limit (default: theirs, 1GiB)")
    ap.add_argument("--bin", type=Path, required=True, help="folder of the release binaries")
    ap.add_argument("--python", default=sys.executable, help="python with the peer engines")
    ap.add_argument("--work", type=Path, default=HERE / "work", help="lakes and logs (replaced)")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="generated landing data (kept)")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--readme", action="store_true", help="put the table into README.md")
    ap.add_argument("--landing-only", action="store_true",
                    help="make the landing of the first of --scales (once, as a run would) and print its folder; "
                         "measure nothing (bench/flamegraphs.sh profiles the jobs on it)")
    ap.add_argument("--sources", default="lastfm,deezer,eventsim", help="comma-separated: lastfm, deezer, eventsim")
    ap.add_argument("--deezer-streams", type=int, default=10_000_000, help="Deezer streams a day")
    ap.add_argument("--deezer-users", type=int, default=1_000_000)
    ap.add_argument("--deezer-songs", type=int, default=1_000_000)
    ap.add_argument("--deezer-peers", default="duckdb,polars,pandas")
    ap.add_argument("--eventsim-users", type=int, default=20_000, help="eventsim users (about 30 events a day each)")
    ap.add_argument("--eventsim-days", type=int, default=7)
    args = ap.parse_args()
    args.sources = args.sources.split(",")
    args.deezer_peers = [p for p in args.deezer_peers.split(",") if p]
    args.peers = [LAKE_PEER, "duckdb", "polars"] + (["pandas", "pyspark"] if args.all_peers else [])
    if args.input and not Path(args.input).is_file():
        raise SystemExit(f"bench: --input {args.input} is not a file")
    scales = [float(s) for s in (args.scales or ("1" if args.input else "0.1,1,10")).split(",")]
    for tool in ["lake-gen", *STAGES]:
        if not (args.bin / tool).is_file():
            raise SystemExit(f"bench: {args.bin / tool} is missing; build with `cargo build --release`")
    if args.landing_only:
        form, short = disk_plan(args, scales[0])
        if short:
            raise SystemExit(f"bench: scale {scales[0]:g}×: {short}")
        print(landing_for(args, scales[0], gzip=form == "gzip")[0])
        return
    args.work.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    report = {"started_at": started.isoformat(timespec="seconds"), "machine": machine(),
              "versions": versions(args), "repeat": args.repeat, "memory_limit": args.memory_limit or None,
              "scales": []}
    stem = args.results / f"{started:%Y%m%dT%H%M%SZ}-{args.rows}"

    def save():
        report["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        md = markdown(report)
        for source in PARTS:
            if source in report:
                md += "\n" + part(source).markdown(report[source]) + "\n"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
        stem.with_suffix(".md").write_text(md)
        return md

    md = ""
    for scale in scales if "lastfm" in args.sources else []:
        report["scales"].append(bench_scale(args, scale))
        md = save()
    if args.spread and "lastfm" in args.sources:
        plays, months = (int(x) for x in args.spread.split(":"))
        report["scales"].append(bench_scale(args, plays / args.rows, months=months))
        md = save()
    for source in PARTS:
        if source in args.sources:
            report[source] = part(source).bench(args)
            md = save()
    print_table(report)
    for source in PARTS:
        if source in report:
            print("\n" + part(source).markdown(report[source]))
    print(f"\nreport: {stem}.md and .json")
    if args.readme:
        if report["scales"]:
            update_readme("bench", markdown(report))
        for source in PARTS:
            if source in report:
                update_readme(f"bench-{source}", part(source).markdown(report[source]) + "\n")
        print("README.md: performance tables replaced")


if __name__ == "__main__":
    main()
