-- silver.lastfm_listens: the accepted plays, exact duplicates (same user, time, artist name
-- and track name) counted once; the first landed copy is kept.
SELECT
  user_id,
  played_at,
  artist_mbid,
  artist_name,
  track_mbid,
  track_name,
  source_object,
  source_line,
  date_part('year', played_at) AS year,
  date_part('month', played_at) AS month
FROM (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY user_id, played_at, artist_name, track_name
      ORDER BY source_object, source_line
    ) AS copy
  FROM lastfm_plays_checked
  WHERE reject_reason IS NULL
)
WHERE copy = 1
