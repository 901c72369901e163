-- The listens of eventsim's logged-in users, in the shape every gold query reads as `plays`
-- (guests have no user id, so no sessions of their own), with the level they listened on.
SELECT CAST(user_id AS VARCHAR) AS user_id, event_time AS played_at, artist AS artist_name, song AS track_name, level
FROM silver.eventsim_listen_events
WHERE user_id IS NOT NULL
