-- silver.sparkify_songs: one row per song id (the first record landed wins); year 0 means unknown.
SELECT song_id, title, artist_id, CASE WHEN year = 0 THEN NULL ELSE year END AS year, duration
FROM (
  SELECT *, row_number() OVER (PARTITION BY song_id ORDER BY source_object, source_line) AS copy
  FROM sparkify_songs_checked
  WHERE reject_reason IS NULL
)
WHERE copy = 1
