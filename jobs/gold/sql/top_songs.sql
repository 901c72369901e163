-- gold.<source>_top_songs: the 10 songs (artist name, track name, compared as exact strings)
-- with most plays inside the top sessions; ties by artist name, then track name, ascending
-- byte order. A user's sessions never overlap in time, so a play belongs to a top session
-- exactly when it is that user's and lies between the session's first and last play.
WITH in_top_sessions AS (
  SELECT p.artist_name, p.track_name
  FROM plays p
  JOIN top_sessions s
    ON p.user_id = s.user_id
   AND p.played_at BETWEEN s.started_at AND s.ended_at
),
counted AS (
  SELECT artist_name, track_name, count(*) AS play_count
  FROM in_top_sessions
  GROUP BY artist_name, track_name
)
SELECT
  row_number() OVER (ORDER BY play_count DESC, artist_name ASC, track_name ASC) AS rank,
  track_name,
  artist_name,
  play_count
FROM counted
ORDER BY rank
LIMIT 10
