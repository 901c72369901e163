#!/usr/bin/env python3
"""Peer engines answering the pipeline's question straight from the raw Last.fm 1K TSV.

Usage: peers.py ENGINE PLAYS_TSV [--out FILE] [--threads N]
ENGINE: duckdb | polars | pandas | pyspark

The question is the gold job's: the 10 most-played songs in the 50 longest listening
sessions. The rules are the pipeline's (jobs/silver/sql/lastfm_plays_checked.sql,
jobs/silver/sql/lastfm_listens.sql, jobs/gold/sql/*.sql):
  * a line has exactly 6 tab-separated fields, no header, no quoting; other lines are rejected
  * user id, artist name and track name must not be empty or only white space, and the
    timestamp must be a valid YYYY-MM-DDTHH:MM:SSZ (UTC); names are compared exactly as written
  * exact duplicates (user, timestamp, artist name, track name) count once
  * a play continues its user's session when it starts at most 1200 s after the previous
    play's start (1200 s continues, 1201 s starts a new session)
  * the 50 longest sessions: most plays first, then earlier start, then user id
  * the answer: the 10 (artist name, track name) pairs with most plays inside those sessions,
    ties by artist name, then track name (byte order)
Output: TSV with header track_name, artist_name, play_count.

Each engine reads the file itself; the engine's own time (import excluded) goes to stderr
as `ENGINE: S s`. bench/bench.py times the whole process around it.
"""

import argparse
import sys
import time

GAP = 1200
SESSIONS = 50
SONGS = 10
FIELDS = ["user_id", "ts", "artist_mbid", "artist_name", "track_mbid", "track_name"]
STRPTIME = "%Y-%m-%dT%H:%M:%SZ"


def duckdb_answer(path, threads):
    import duckdb

    db = duckdb.connect(config={"threads": threads} if threads else {})
    columns = ", ".join(f"'{f}': 'VARCHAR'" for f in FIELDS)
    path_sql = path.replace("'", "''")
    # strict_mode + ignore_errors: lines with another field count are skipped
    db.execute(f"""
        CREATE TEMP VIEW plays AS
        SELECT DISTINCT user_id, epoch(try_strptime(ts, '{STRPTIME}'))::BIGINT AS t, artist_name, track_name
        FROM read_csv('{path_sql}', delim = '\t', header = false, quote = '', escape = '',
                      columns = {{{columns}}}, strict_mode = true, ignore_errors = true,
                      null_padding = false)
        WHERE trim(coalesce(user_id, '')) <> ''
          AND trim(coalesce(artist_name, '')) <> ''
          AND trim(coalesce(track_name, '')) <> ''
          AND try_strptime(ts, '{STRPTIME}') IS NOT NULL
    """)
    return db.execute(f"""
        WITH gaps AS (
          SELECT *, coalesce(t - lag(t) OVER w > {GAP}, true)::INT AS starts
          FROM plays WINDOW w AS (PARTITION BY user_id ORDER BY t)
        ), numbered AS (
          SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS session
          FROM gaps
        ), top_sessions AS (
          SELECT user_id, session
          FROM numbered
          GROUP BY user_id, session
          ORDER BY count(*) DESC, min(t), user_id
          LIMIT {SESSIONS}
        )
        SELECT track_name, artist_name, count(*) AS plays
        FROM numbered JOIN top_sessions USING (user_id, session)
        GROUP BY artist_name, track_name
        ORDER BY plays DESC, artist_name, track_name
        LIMIT {SONGS}
    """).fetchall()


def polars_answer(path, threads):
    import os

    if threads:
        os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    # whole lines, split here, so that a line with another field count can be rejected
    fields = pl.col("line").str.split("\t")
    plays = (
        pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None,
                    new_columns=["line"], schema_overrides={"line": pl.String})
        .filter(fields.list.len() == len(FIELDS))
        .select([fields.list.get(i).alias(f) for i, f in enumerate(FIELDS)])
        .with_columns(t=pl.col("ts").str.strptime(pl.Datetime("us"), STRPTIME, strict=False).dt.epoch("s"))
        .filter(pl.col("t").is_not_null(),
                *(pl.col(c).str.strip_chars() != "" for c in ("user_id", "artist_name", "track_name")))
        .select("user_id", "t", "artist_name", "track_name")
        .unique()
        .sort("user_id", "t")
        .with_columns(
            session=(pl.col("t").diff().over("user_id").fill_null(GAP + 1) > GAP).cast(pl.Int64).cum_sum().over("user_id")
        )
        .collect()
    )
    top_sessions = (
        plays.group_by("user_id", "session")
        .agg(n=pl.len(), start=pl.col("t").min())
        .sort(["n", "start", "user_id"], descending=[True, False, False])
        .head(SESSIONS)
        .select("user_id", "session")
    )
    songs = (
        plays.join(top_sessions, on=["user_id", "session"])
        .group_by("artist_name", "track_name")
        .agg(plays=pl.len())
        .sort(["plays", "artist_name", "track_name"], descending=[True, False, False])
        .head(SONGS)
    )
    return list(songs.select("track_name", "artist_name", "plays").iter_rows())


def pandas_answer(path, threads):
    import csv

    import pandas as pd

    df = pd.read_csv(path, sep="\t", header=None, names=FIELDS, usecols=[0, 1, 3, 5], dtype=str,
                     quoting=csv.QUOTE_NONE, keep_default_na=False, on_bad_lines="skip", engine="c")
    t = pd.to_datetime(df["ts"], format=STRPTIME, errors="coerce", utc=True)
    keep = t.notna()
    for c in ("user_id", "artist_name", "track_name"):
        keep &= df[c].str.strip() != ""
    df = (df.assign(t=t)[keep]
          .assign(t=lambda d: d["t"].dt.as_unit("s").astype("int64"))
          [["user_id", "t", "artist_name", "track_name"]]
          .drop_duplicates()
          .sort_values(["user_id", "t"], kind="stable"))
    gap = df.groupby("user_id")["t"].diff()
    df["session"] = (gap.isna() | (gap > GAP)).astype("int64").groupby(df["user_id"]).cumsum()
    top_sessions = (df.groupby(["user_id", "session"]).agg(n=("t", "size"), start=("t", "min")).reset_index()
                    .sort_values(["n", "start", "user_id"], ascending=[False, True, True])
                    .head(SESSIONS)[["user_id", "session"]])
    songs = (df.merge(top_sessions, on=["user_id", "session"])
             .groupby(["artist_name", "track_name"]).size().reset_index(name="plays")
             .sort_values(["plays", "artist_name", "track_name"], ascending=[False, True, True])
             .head(SONGS))
    return [(r.track_name, r.artist_name, int(r.plays)) for r in songs.itertuples()]


def pyspark_answer(path, threads):
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    spark = (SparkSession.builder.master(f"local[{threads or '*'}]").appName("lakehouse-bench")
             .config("spark.driver.memory", "8g").config("spark.sql.shuffle.partitions", "8")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    fields = F.split(F.col("value"), "\t", -1)
    plays = (spark.read.text(path)
             .filter(F.size(fields) == len(FIELDS))
             .select(*(fields[i].alias(f) for i, f in enumerate(FIELDS)))
             .withColumn("t", F.unix_timestamp(F.try_to_timestamp("ts", F.lit("yyyy-MM-dd'T'HH:mm:ss'Z'"))))
             .filter(F.col("t").isNotNull() & (F.trim("user_id") != "") & (F.trim("artist_name") != "")
                     & (F.trim("track_name") != ""))
             .select("user_id", "t", "artist_name", "track_name")
             .distinct())
    by_user = Window.partitionBy("user_id").orderBy("t")
    plays = (plays.withColumn("starts", F.when(F.col("t") - F.lag("t").over(by_user) <= GAP, 0).otherwise(1))
             .withColumn("session", F.sum("starts").over(by_user.rowsBetween(Window.unboundedPreceding, 0)))
             .cache())
    top_sessions = (plays.groupBy("user_id", "session").agg(F.count("*").alias("n"), F.min("t").alias("start"))
                    .orderBy(F.desc("n"), "start", "user_id").limit(SESSIONS).select("user_id", "session"))
    songs = (plays.join(top_sessions, ["user_id", "session"])
             .groupBy("artist_name", "track_name").agg(F.count("*").alias("plays"))
             .orderBy(F.desc("plays"), "artist_name", "track_name").limit(SONGS))
    out = [(r["track_name"], r["artist_name"], r["plays"]) for r in songs.collect()]
    spark.stop()
    return out


ENGINES = {"duckdb": duckdb_answer, "polars": polars_answer, "pandas": pandas_answer, "pyspark": pyspark_answer}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=list(ENGINES))
    ap.add_argument("plays", help="the Last.fm 1K plays TSV")
    ap.add_argument("--out", help="write the answer here (default: stdout)")
    ap.add_argument("--threads", type=int, default=0, help="engine threads (default: all cores)")
    a = ap.parse_args()
    start = time.perf_counter()
    rows = ENGINES[a.engine](a.plays, a.threads)
    seconds = time.perf_counter() - start
    text = "track_name\tartist_name\tplay_count\n" + "".join(f"{t}\t{ar}\t{n}\n" for t, ar, n in rows)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print(f"{a.engine}: {seconds:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
