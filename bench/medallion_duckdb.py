#!/usr/bin/env python3
"""The Last.fm medallion lake built by DuckDB alone: the like-for-like peer of the project's three jobs.

Usage: medallion_duckdb.py LANDING_DIR OUT_DIR [--threads N] [--memory-limit 1GB]

What a user would build instead with DuckDB and SQL files (dbt-duckdb style), doing the work the jobs do:
  bronze  every line of LANDING_DIR/lastfm/*.tsv kept as text with its lineage (object, line number, run id,
          ingestion time), profiles likewise; a plays line without exactly 6 tab-separated fields goes to the
          bronze quarantine with its reason. Parquet files.
  silver  plays typed (played_at as a UTC timestamp), checked (the rules of peers.py: user id, artist name and
          track name not empty or white space, timestamp YYYY-MM-DDTHH:MM:SSZ), exact duplicates dropped, written
          as Parquet partitioned by year and month (hive layout); rejects to the silver quarantine with the rule;
          users from the profiles.
  gold    sessions (1200 s gap; the same rules as peers.py), the 50 longest, the top-10 songs TSV, and the weekly
          country top 50 (weeks Monday to Sunday, dated by their Sunday; users without a country left out; ties by
          song text). Parquet, and OUT_DIR/gold/top_songs.tsv equal to peers.py's answer.
It prints one JSON line: the rows of each table and the seconds of each layer. Needs `pip install duckdb`.
This is a reference for measuring, not the project's implementation: `make bench` runs it as the peer
"duckdb-lake" on the landing the jobs take, with the jobs' default memory limit (1 GB), checks that each table
it reports has the rows the pipeline's table has and that its answer equals the pipeline's, and reports the
pipeline's time against it layer by layer (bench/bench.py). The rules are those of peers.py and of the jobs'
SQL (jobs/silver/sql/lastfm_*.sql, jobs/gold/sql/lastfm_*.sql).
"""
import argparse
import glob
import json
import os
import time
import uuid

TS = "%Y-%m-%dT%H:%M:%SZ"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("landing")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--memory-limit", default="1GB")
    a = ap.parse_args()
    import duckdb

    con = duckdb.connect()
    out = a.out.rstrip("/")
    # spills go under OUT (DuckDB's default is .tmp in the working directory, a clone's root
    # when `make bench` runs it)
    con.execute(f"SET threads={a.threads}; SET memory_limit='{a.memory_limit}'; SET preserve_insertion_order=true; "
                f"SET temp_directory='{out}/.spill'")
    for d in ("bronze", "silver", "gold"):
        os.makedirs(f"{out}/{d}", exist_ok=True)
    files = sorted(glob.glob(f"{a.landing}/lastfm/**/*.tsv", recursive=True))
    plays = [f for f in files if not os.path.basename(f).startswith("userid-profile")]
    profiles = [f for f in files if os.path.basename(f).startswith("userid-profile")]
    run_id = uuid.uuid4().hex
    rows, secs = {}, {}

    def lines(paths):  # every line as text, with its object and 1-based line number
        parts = []
        for p in paths:
            parts.append(f"""SELECT '{p}' AS source_object, row_number() OVER () AS source_line, line
                FROM read_csv('{p}', columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='', escape='',
                              header=false, auto_detect=false, strict_mode=false, null_padding=false)""")
        return " UNION ALL ".join(parts) if parts else "SELECT NULL::VARCHAR source_object, 0 source_line, NULL::VARCHAR line WHERE false"

    def copy(sql, path, partition=False):
        opt = "FORMAT parquet, COMPRESSION snappy" + (", PARTITION_BY (year, month), OVERWRITE_OR_IGNORE" if partition else "")
        con.execute(f"COPY ({sql}) TO '{path}' ({opt})")

    t = time.time()
    lineage = f"'{run_id}' AS run_id, now() AS ingested_at"
    con.execute(f"CREATE TEMP TABLE raw AS SELECT *, len(string_split(coalesce(line, ''), chr(9))) AS fields FROM ({lines(plays)})")
    copy(f"SELECT source_object, source_line, line, {lineage} FROM raw WHERE fields = 6", f"{out}/bronze/lastfm_plays.parquet")
    copy(f"SELECT source_object, source_line, line, 'expected 6 tab-separated fields, found ' || fields AS reason, {lineage} "
         f"FROM raw WHERE fields <> 6", f"{out}/bronze/lastfm_quarantine.parquet")
    copy(f"SELECT source_object, source_line, line, {lineage} FROM ({lines(profiles)}) WHERE source_line > 1",
         f"{out}/bronze/lastfm_profiles.parquet")
    con.execute("DROP TABLE raw")
    secs["bronze"] = time.time() - t

    t = time.time()
    con.execute(f"""CREATE TEMP VIEW typed AS
        SELECT s[1] AS user_id, s[2] AS ts, nullif(s[3], '') AS artist_mbid, s[4] AS artist_name,
               nullif(s[5], '') AS track_mbid, s[6] AS track_name, try_strptime(s[2], '{TS}') AS played_at,
               source_object, source_line
        FROM (SELECT string_split(line, chr(9)) AS s, source_object, source_line
              FROM read_parquet('{out}/bronze/lastfm_plays.parquet'))""")
    reason = """CASE WHEN trim(user_id) = '' THEN 'user_id is empty or only white space'
                     WHEN trim(artist_name) = '' THEN 'artist_name is empty or only white space'
                     WHEN trim(track_name) = '' THEN 'track_name is empty or only white space'
                     WHEN played_at IS NULL THEN 'timestamp is not a valid YYYY-MM-DDTHH:MM:SSZ' END"""
    con.execute(f"CREATE TEMP TABLE checked AS SELECT *, {reason} AS reason FROM typed")
    copy("""SELECT user_id, played_at, artist_mbid, artist_name, track_mbid, track_name,
                   min(source_object) AS source_object, min(source_line) AS source_line,
                   year(played_at) AS year, month(played_at) AS month
            FROM checked WHERE reason IS NULL
            GROUP BY user_id, played_at, artist_mbid, artist_name, track_mbid, track_name""",
         f"{out}/silver/lastfm_listens", partition=True)
    copy("SELECT source_object, source_line, reason FROM checked WHERE reason IS NOT NULL",
         f"{out}/silver/lastfm_quarantine.parquet")
    copy(f"""SELECT s[1] AS user_id, nullif(s[2], '') AS gender, try_cast(s[3] AS INTEGER) AS age,
                    nullif(s[4], '') AS country, try_strptime(s[5], '%b %d, %Y') AS registered
             FROM (SELECT string_split(line, chr(9)) AS s FROM read_parquet('{out}/bronze/lastfm_profiles.parquet'))
             WHERE trim(coalesce(s[1], '')) <> ''""", f"{out}/silver/lastfm_users.parquet")
    con.execute("DROP TABLE checked")
    secs["silver"] = time.time() - t

    t = time.time()
    listens = f"read_parquet('{out}/silver/lastfm_listens/**/*.parquet', hive_partitioning=true)"
    con.execute(f"""CREATE TEMP TABLE sess AS
        SELECT user_id, played_at, artist_name, track_name,
               sum(new_s) OVER (PARTITION BY user_id ORDER BY played_at ROWS UNBOUNDED PRECEDING) AS sid
        FROM (SELECT user_id, played_at, artist_name, track_name,
                     CASE WHEN epoch(played_at) - epoch(lag(played_at) OVER (PARTITION BY user_id ORDER BY played_at))
                          <= 1200 THEN 0 ELSE 1 END AS new_s
              FROM {listens})""")
    con.execute("""CREATE TEMP TABLE sessions AS
        SELECT user_id, sid AS session_number, min(played_at) AS started_at, max(played_at) AS ended_at,
               count(*) AS play_count FROM sess GROUP BY user_id, sid""")
    copy("SELECT * FROM sessions", f"{out}/gold/lastfm_sessions.parquet")
    con.execute("""CREATE TEMP TABLE top_sessions AS SELECT * FROM sessions
                   ORDER BY play_count DESC, started_at ASC, user_id ASC LIMIT 50""")
    copy("SELECT * FROM top_sessions", f"{out}/gold/lastfm_top_sessions.parquet")
    top = """SELECT s.track_name, s.artist_name, count(*) AS play_count
             FROM sess s JOIN top_sessions t ON s.user_id = t.user_id AND s.sid = t.session_number
             GROUP BY s.artist_name, s.track_name
             ORDER BY play_count DESC, artist_name ASC, track_name ASC LIMIT 10"""
    copy(top, f"{out}/gold/lastfm_top_songs.parquet")
    con.execute(f"COPY ({top}) TO '{out}/gold/top_songs.tsv' (HEADER, DELIMITER '\t', QUOTE '')")
    copy(f"""SELECT chart_date, key, rank, song, streams FROM (
               SELECT *, row_number() OVER (PARTITION BY chart_date, key ORDER BY streams DESC, song ASC) AS rank
               FROM (SELECT CAST(date_trunc('week', l.played_at) AS DATE) + INTERVAL 6 DAY AS chart_date,
                            u.country AS key, l.artist_name || ' — ' || l.track_name AS song, count(*) AS streams
                     FROM {listens} l JOIN read_parquet('{out}/silver/lastfm_users.parquet') u USING (user_id)
                     WHERE u.country IS NOT NULL GROUP BY ALL))
             WHERE rank <= 50""", f"{out}/gold/lastfm_country_top50.parquet")
    secs["gold"] = time.time() - t

    for name, path in [("bronze.lastfm_plays", "bronze/lastfm_plays.parquet"),
                       ("bronze.lastfm_profiles", "bronze/lastfm_profiles.parquet"),
                       ("silver.lastfm_listens", "silver/lastfm_listens/**/*.parquet"),
                       ("silver.lastfm_users", "silver/lastfm_users.parquet"),
                       ("gold.lastfm_top_sessions", "gold/lastfm_top_sessions.parquet"),
                       ("gold.lastfm_top_songs", "gold/lastfm_top_songs.parquet"),
                       ("gold.lastfm_sessions", "gold/lastfm_sessions.parquet"),
                       ("gold.lastfm_country_top50", "gold/lastfm_country_top50.parquet")]:
        rows[name] = con.execute(f"SELECT count(*) FROM read_parquet('{out}/{path}')").fetchone()[0]
    print(json.dumps({"rows": rows, "seconds": {k: round(v, 2) for k, v in secs.items()}}), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
