-- gold.<source>_sessions: listening sessions over `plays` (user_id, played_at, artist_name,
-- track_name). A play continues its user's session when it starts at most 1200 s after the
-- previous play's start: 1200 s continues the session, 1201 s starts a new one. Plays in the
-- same second never split a session. Sessions are numbered per user from 1, in time order.
WITH flagged AS (
  SELECT
    user_id,
    played_at,
    CASE
      WHEN to_unixtime(played_at)
           - lag(to_unixtime(played_at)) OVER (PARTITION BY user_id ORDER BY played_at) <= 1200
      THEN 0
      ELSE 1
    END AS starts_session
  FROM plays
),
numbered AS (
  SELECT
    user_id,
    played_at,
    sum(starts_session) OVER (
      PARTITION BY user_id ORDER BY played_at ROWS UNBOUNDED PRECEDING
    ) AS session_number
  FROM flagged
)
SELECT
  user_id,
  session_number,
  min(played_at) AS started_at,
  max(played_at) AS ended_at,
  count(*) AS play_count
FROM numbered
GROUP BY user_id, session_number
