-- gold.eventsim_dim_songs: one row per song (artist name and title, as written), with a stable id
-- and its length (the longest seen: eventsim gives one per song).
SELECT
  stable_id(artist, song) AS song_id,
  song AS title,
  artist AS artist_name,
  stable_id(artist) AS artist_id,
  max(duration) AS duration,
  count(*) AS streams
FROM silver.eventsim_listen_events
GROUP BY artist, song
