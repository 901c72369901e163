-- gold.eventsim_streams_by_state: listens and distinct listeners per UTC day and US state.
SELECT CAST(event_time AS DATE) AS day, state, count(*) AS streams, count(DISTINCT user_id) AS listeners
FROM silver.eventsim_listen_events
WHERE state IS NOT NULL
GROUP BY 1, 2
