-- silver.lastfm_listens: the accepted plays, exact duplicates (same user, time, artist name
-- and track name) counted once; the first landed copy is kept.
-- Copies of a play sort next to each other within their user, first landed first, so a row
-- is a copy when it repeats the previous row's time and names. Partitioning by user alone
-- keeps the window cheap: one partition per user, not one per play.
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
    lag(played_at) OVER copies AS previous_played_at,
    lag(artist_name) OVER copies AS previous_artist_name,
    lag(track_name) OVER copies AS previous_track_name
  FROM lastfm_plays_checked
  WHERE reject_reason IS NULL
  WINDOW copies AS (
    PARTITION BY user_id
    ORDER BY played_at, artist_name, track_name, source_object, source_line
  )
)
WHERE previous_played_at IS NULL
   OR played_at <> previous_played_at
   OR artist_name <> previous_artist_name
   OR track_name <> previous_track_name
