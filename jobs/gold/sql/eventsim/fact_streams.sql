-- gold.eventsim_fact_streams: one row per listen, keyed to the dimensions by their stable ids,
-- with the level the user listened on (guests: no user id).
SELECT
  event_time,
  user_id,
  level,
  stable_id(artist, song) AS song_id,
  stable_id(artist) AS artist_id,
  stable_id(city, state, zip, lat, lon) AS location_id,
  session_id,
  item_in_session,
  duration,
  date_part('year', event_time) AS year,
  date_part('month', event_time) AS month
FROM silver.eventsim_listen_events
