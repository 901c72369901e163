-- gold.<source>_sessions: listening sessions over `session_plays` (user_id, played_at). A play
-- continues its user's session when it starts at most 1200 s after the previous play's start:
-- 1200 s continues the session, 1201 s starts a new one. Plays in the same second never split
-- a session. Sessions are numbered per user from 1, in time order, after the user's `earlier`
-- sessions (user_id, sessions): none when every play is read, the sessions kept when a run
-- after a delivery reads only the plays after them (see sessions.rs).
--
-- One sort of the plays by user and time finds each session's first and last play (gap to
-- the previous and to the next play); only those bounds (two rows per session at most) go on
-- to pair each first play with its last one. No running sum or aggregate over every play.
WITH ordered AS (
  SELECT
    user_id,
    played_at,
    row_number() OVER by_time AS n,
    lag(played_at) OVER by_time AS previous_at,
    lead(played_at) OVER by_time AS next_at
  FROM session_plays
  WINDOW by_time AS (PARTITION BY user_id ORDER BY played_at)
),
bounds AS (
  SELECT
    user_id,
    played_at,
    n,
    previous_at IS NULL OR to_unixtime(played_at) - to_unixtime(previous_at) > 1200 AS is_first,
    next_at IS NULL OR to_unixtime(next_at) - to_unixtime(played_at) > 1200 AS is_last
  FROM ordered
),
paired AS (
  SELECT
    user_id,
    played_at,
    n,
    is_first,
    is_last,
    lead(played_at) OVER by_n AS next_bound_at,
    lead(n) OVER by_n AS next_bound_n
  FROM bounds
  WHERE is_first OR is_last
  WINDOW by_n AS (PARTITION BY user_id ORDER BY n)
),
found AS (
  SELECT
    user_id,
    CAST(row_number() OVER (PARTITION BY user_id ORDER BY n) AS BIGINT) AS number,
    played_at AS started_at,
    CASE WHEN is_last THEN played_at ELSE next_bound_at END AS ended_at,
    CASE WHEN is_last THEN 1 ELSE next_bound_n - n + 1 END AS play_count
  FROM paired
  WHERE is_first
)
SELECT
  f.user_id,
  coalesce(e.sessions, 0) + f.number AS session_number,
  f.started_at,
  f.ended_at,
  f.play_count,
  date_part('year', f.started_at) AS year,
  date_part('month', f.started_at) AS month
FROM found f
LEFT JOIN earlier e ON f.user_id = e.user_id
