-- silver.sparkify_quarantine: every bronze Sparkify record a rule rejected, with the reason.
SELECT 'silver.sparkify_songplays' AS table_name, source_object, source_line, record AS raw_line, reject_reason AS reason, batch
FROM sparkify_events_checked
WHERE reject_reason IS NOT NULL
UNION ALL
SELECT 'silver.sparkify_songs' AS table_name, source_object, source_line, record AS raw_line, reject_reason AS reason, batch
FROM sparkify_songs_checked
WHERE reject_reason IS NOT NULL
