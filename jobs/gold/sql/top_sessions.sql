-- gold.<source>_top_sessions: the 50 sessions with most plays; ties by earlier start, then
-- user id.
SELECT
  row_number() OVER (ORDER BY play_count DESC, started_at ASC, user_id ASC) AS rank,
  user_id,
  session_number,
  started_at,
  ended_at,
  play_count
FROM sessions
ORDER BY rank
LIMIT 50
