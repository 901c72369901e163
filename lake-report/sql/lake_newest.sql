-- The newest data time of each source.
SELECT 'lastfm' AS source, max(played_at) AS newest FROM silver.lastfm_listens
UNION ALL
SELECT 'sparkify', max(start_time) FROM silver.sparkify_songplays
UNION ALL
SELECT 'deezer', CAST(max(listen_date) AS TIMESTAMP) FROM silver.deezer_streams
UNION ALL
SELECT 'eventsim', max(event_time) FROM silver.eventsim_listen_events
