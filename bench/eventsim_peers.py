"""eventsim's daily activity straight from the raw JSON lines, as a peer of the pipeline.

    python eventsim_peers.py duckdb LANDING_EVENTSIM --out FILE

Reads `<stream>/**/*.json[.gz]` of the four streams with DuckDB's JSON reader and writes, as JSON,
one object per UTC day with the columns of gold.eventsim_activity_daily. The rules are the
pipeline's where they decide a count: a line that is not JSON is skipped; `ts`, `sessionId` and
`itemInSession` must be JSON integers and an auth event's `success` a boolean, else the event is
left out; an event is counted once per (ts, sessionId, itemInSession) within its stream.
"""

import argparse
import json
import sys
import time
from pathlib import Path

STREAMS = ["listen_events", "page_view_events", "auth_events", "status_change_events"]

ACTIVITY = """
WITH raw AS (
  {unions}
),
typed AS (
  SELECT stream,
         CAST(json->>'$.ts' AS BIGINT) AS ts,
         CAST(json->>'$.sessionId' AS BIGINT) AS session_id,
         CAST(json->>'$.itemInSession' AS BIGINT) AS item_in_session,
         TRY_CAST(json->>'$.userId' AS BIGINT) AS user_id,
         json->>'$.level' AS level,
         json->>'$.auth' AS auth,
         CAST(json->>'$.success' AS BOOLEAN) AS success
  FROM raw
  WHERE json_type(json, '$.ts') IN ('BIGINT', 'UBIGINT')
    AND json_type(json, '$.sessionId') IN ('BIGINT', 'UBIGINT')
    AND json_type(json, '$.itemInSession') IN ('BIGINT', 'UBIGINT')
    AND (stream <> 'auth_events' OR json_type(json, '$.success') = 'BOOLEAN')
),
events AS (
  SELECT DISTINCT ON (stream, ts, session_id, item_in_session) *,
         CAST(epoch_ms(ts) AS DATE) AS day
  FROM typed
)
SELECT
  strftime(day, '%Y-%m-%d') AS day,
  count(*) FILTER (WHERE stream = 'listen_events') AS streams,
  count(DISTINCT user_id) AS active_users,
  count(*) FILTER (WHERE stream = 'auth_events' AND success) AS logins,
  count(*) FILTER (WHERE stream = 'auth_events' AND NOT success) AS failed_logins,
  count(*) FILTER (WHERE stream = 'status_change_events' AND auth = 'Logged In' AND level = 'paid') AS upgrades,
  count(*) FILTER (WHERE stream = 'status_change_events' AND auth = 'Logged In' AND level = 'free') AS downgrades,
  count(*) FILTER (WHERE stream = 'status_change_events' AND auth = 'Cancelled') AS cancellations,
  count(DISTINCT session_id) FILTER (WHERE user_id IS NULL) AS guests_sessions
FROM events
GROUP BY day
ORDER BY day
"""


def files(folder, stream):
    """The stream's objects as a DuckDB list literal."""
    found = sorted(str(p) for p in Path(folder, stream).rglob("*") if p.name.endswith((".json", ".json.gz")))
    if not found:
        raise SystemExit(f"eventsim_peers: no .json or .json.gz under {folder}/{stream}")
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in found) + "]"


def duckdb_activity(folder):
    import duckdb

    con = duckdb.connect()
    unions = "\n  UNION ALL\n  ".join(
        f"SELECT '{s}' AS stream, json FROM read_ndjson_objects({files(folder, s)}, ignore_errors = true)"
        for s in STREAMS
    )
    rows = con.sql(ACTIVITY.format(unions=unions))
    names = rows.columns
    return {r[0]: dict(zip(names[1:], r[1:])) for r in rows.fetchall()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["duckdb"])
    ap.add_argument("folder", help="the eventsim landing folder (one folder per stream)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start = time.perf_counter()
    days = duckdb_activity(args.folder)
    with open(args.out, "w") as f:
        json.dump(days, f, indent=1, sort_keys=True)
    print(f"{args.engine}: {len(days)} days: {time.perf_counter() - start:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
