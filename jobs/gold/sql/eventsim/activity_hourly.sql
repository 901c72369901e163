-- gold.eventsim_activity_hourly: listens and distinct listeners per UTC hour, by level.
SELECT
  date_trunc('hour', event_time) AS hour,
  level,
  count(*) AS streams,
  count(DISTINCT user_id) AS listeners
FROM silver.eventsim_listen_events
GROUP BY 1, 2
