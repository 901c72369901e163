-- gold.eventsim_dim_artists: one row per artist name, with a stable id.
SELECT
  stable_id(artist) AS artist_id,
  artist AS name,
  count(DISTINCT song) AS songs,
  count(*) AS streams
FROM silver.eventsim_listen_events
GROUP BY artist
