#!/usr/bin/env python3
"""Peer engines computing the Deezer charts of one day straight from the raw daily logs.

Usage: deezer_peers.py ENGINE LOG_DIR --date YYYYMMDD [--out DIR] [--threads N]
ENGINE: duckdb | polars | pandas

The exercise's known solutions recompute the week from the raw files every day; so do these.
The rules are the pipeline's (and ../shared/bench/deezer.py's):
  * the logs are listen-YYYYMMDD.log[.gz] in LOG_DIR; the charts of day D read the files of
    D-6 .. D; a missing day is left out
  * a line is one stream `sng_id|user_id|country`: spaces and tabs around a field, a CR before
    the line feed and BOMs at the start of a line are ignored; ids are decimal digits that fit a
    signed 64-bit integer, the country one of the 249 ISO 3166-1 alpha-2 codes; other lines,
    blank ones included, are rejected; identical lines are separate streams
  * per country, and per user, the 50 songs with most streams; ties go to the smaller sng_id
Output into --out: country_top50_YYYYMMDD.txt (`CC|sng:count,...`, countries ascending) and
user_top50_YYYYMMDD.txt (users ascending), LF line ends.

The engine's own time (import excluded) goes to stderr as `ENGINE: S s`.
"""

import argparse
import datetime as dt
import gzip
import os
import re
import shutil
import sys
import tempfile
import time

TOP = 50
ISO_3166 = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT "
    "BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH "
    "ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT "
    "HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS "
    "LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI "
    "NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG "
    "SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG "
    "UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
).split()
NAME = re.compile(r"^listen-([0-9]{8})\.log(\.gz)?$")
LINE = r"^[ \t]*([0-9]+)[ \t]*\|[ \t]*([0-9]+)[ \t]*\|[ \t]*([A-Z]{2})[ \t]*\r?$"


def window_files(log_dir, date, tmp):
    """The plain-text log files of the 7 days ending on `date` (gzip ones unpacked into tmp)."""
    end = dt.datetime.strptime(date, "%Y%m%d").date()
    days = {(end - dt.timedelta(days=k)).strftime("%Y%m%d") for k in range(7)}
    files = []
    for name in sorted(os.listdir(log_dir)):
        m = NAME.match(name)
        if not m or m.group(1) not in days:
            continue
        path = os.path.join(log_dir, name)
        if m.group(2):
            plain = os.path.join(tmp, name[:-3])
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            path = plain
        files.append(path)
    return files


def duckdb_charts(files, threads):
    import duckdb

    con = duckdb.connect(config={"threads": threads} if threads else {})
    iso = ",".join(f"('{c}')" for c in ISO_3166)
    flist = "[" + ",".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    con.execute(f"""
    CREATE TEMP TABLE streams AS
    WITH lines AS (
      SELECT ltrim(line, chr(65279)) AS line
      FROM read_csv({flist}, columns={{'line':'VARCHAR'}}, delim=chr(31), quote='', escape='',
                    header=false, auto_detect=false, ignore_errors=true, null_padding=false)
    ), parsed AS (
      SELECT TRY_CAST(regexp_extract(line, '{LINE}', 1) AS BIGINT) AS sng_id,
             TRY_CAST(regexp_extract(line, '{LINE}', 2) AS BIGINT) AS user_id,
             regexp_extract(line, '{LINE}', 3) AS country
      FROM lines WHERE regexp_matches(line, '{LINE}')
    )
    SELECT * FROM parsed
    WHERE sng_id IS NOT NULL AND user_id IS NOT NULL AND country IN (SELECT * FROM (VALUES {iso}))
    """)

    def chart(key):
        return con.execute(f"""
        WITH c AS (SELECT {key} AS k, sng_id, count(*) AS n FROM streams GROUP BY ALL),
        r AS (SELECT *, row_number() OVER (PARTITION BY k ORDER BY n DESC, sng_id) AS rk FROM c)
        SELECT k, string_agg(sng_id::VARCHAR || ':' || n::VARCHAR, ',' ORDER BY rk) FROM r
        WHERE rk <= {TOP} GROUP BY k ORDER BY k
        """).fetchall()

    return chart("country"), chart("user_id")


def polars_charts(files, threads):
    if threads:
        os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    frames = [pl.scan_csv(f, has_header=False, separator="\x1f", quote_char=None, new_columns=["line"],
                          schema_overrides={"line": pl.String}, encoding="utf8-lossy") for f in files]
    groups = (pl.concat(frames).with_columns(pl.col("line").str.strip_chars_start("\ufeff"))
              .select(pl.col("line").str.extract_groups(LINE).alias("g")).unnest("g"))
    streams = (groups.select(pl.col("1").cast(pl.Int64, strict=False).alias("sng_id"),
                             pl.col("2").cast(pl.Int64, strict=False).alias("user_id"),
                             pl.col("3").alias("country"))
               .filter(pl.col("sng_id").is_not_null() & pl.col("user_id").is_not_null()
                       & pl.col("country").is_in(ISO_3166))
               .collect())

    def chart(key):
        c = (streams.lazy().group_by(key, "sng_id").len("n")
             .sort([key, "n", "sng_id"], descending=[False, True, False])
             .group_by(key, maintain_order=True).head(TOP)
             .group_by(key, maintain_order=True)
             .agg(pl.format("{}:{}", "sng_id", "n").str.join(","))
             .sort(key).collect())
        return list(c.iter_rows())

    return chart("country"), chart("user_id")


def pandas_charts(files, threads):
    import pandas as pd

    parts = []
    for f in files:
        # a line with a \x1f in it splits into more than one field: skipped, as DuckDB does
        lines = pd.read_csv(f, header=None, names=["line"], sep="\x1f", quoting=3, dtype=str,
                            keep_default_na=False, na_filter=False, skip_blank_lines=False,
                            encoding="utf-8", encoding_errors="replace", on_bad_lines="skip")
        parts.append(lines["line"].str.lstrip("\ufeff").str.extract(LINE))
    g = pd.concat(parts, ignore_index=True).dropna()

    def fits(digits):
        """Decimal digits whose value fits a signed 64-bit integer."""
        d = digits.str.lstrip("0").replace("", "0")
        return (d.str.len() < 19) | ((d.str.len() == 19) & (d <= "9223372036854775807"))

    ok = fits(g[0]) & fits(g[1]) & g[2].isin(set(ISO_3166))
    streams = pd.DataFrame({"sng_id": g.loc[ok, 0].astype("int64"),
                            "user_id": g.loc[ok, 1].astype("int64"),
                            "country": g.loc[ok, 2]})

    def chart(key):
        c = streams.groupby([key, "sng_id"], sort=False).size().reset_index(name="n")
        c = c.sort_values([key, "n", "sng_id"], ascending=[True, False, True], kind="stable")
        c = c.groupby(key, sort=False).head(TOP)
        c["s"] = c["sng_id"].astype(str) + ":" + c["n"].astype(str)
        out = c.groupby(key, sort=True)["s"].agg(",".join)
        return list(out.items())

    return chart("country"), chart("user_id")


ENGINES = {"duckdb": duckdb_charts, "polars": polars_charts, "pandas": pandas_charts}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=sorted(ENGINES))
    ap.add_argument("logs")
    ap.add_argument("--date", required=True)
    ap.add_argument("--out", default=".")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = window_files(a.logs, a.date, tmp)
        t0 = time.time()
        country, user = ENGINES[a.engine](files, a.threads) if files else ([], [])
        took = time.time() - t0
    os.makedirs(a.out, exist_ok=True)
    for name, rows in (("country", country), ("user", user)):
        with open(os.path.join(a.out, f"{name}_top50_{a.date}.txt"), "w", newline="\n") as f:
            for k, songs in rows:
                f.write(f"{k}|{songs}\n")
    print(f"{a.engine}: {took:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
