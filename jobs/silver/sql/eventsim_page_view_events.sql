-- silver.eventsim_page_view_events: the valid page views, each counted once. Fluentd and Kafka deliver
-- at least once: an event is identified by (ts, sessionId, itemInSession) within its stream, and
-- the first landed copy is kept (the table declares that key, `sources.rs`, and the write drops
-- the copies in its sort by month; `ts` and `batch` are read for it, not written).
SELECT
  event_time, session_id, item_in_session, user_id, level, first_name, last_name, gender,
  to_timestamp_millis(registration) AS registered_at, city, zip, state, lat, lon, user_agent,
  page, auth, method, status, artist, song, duration,
  source_object, source_line, ts, batch,
  date_part('year', event_time) AS year,
  date_part('month', event_time) AS month
FROM eventsim_page_view_events_checked
WHERE reject_reason IS NULL
