-- silver.sparkify_artists: one row per artist id, from the first song record that names it.
SELECT
  artist_id,
  artist_name AS name,
  nullif(artist_location, '') AS location,
  artist_latitude AS latitude,
  artist_longitude AS longitude
FROM (
  SELECT *, row_number() OVER (PARTITION BY artist_id ORDER BY source_object, source_line) AS copy
  FROM sparkify_songs_checked
  WHERE reject_reason IS NULL
)
WHERE copy = 1
