-- gold.eventsim_dim_location: one row per place events came from (city, state, zip and
-- coordinates as eventsim writes them), with a stable id.
SELECT DISTINCT
  stable_id(city, state, zip, lat, lon) AS location_id,
  city, state, zip, lat, lon
FROM silver.eventsim_listen_events
