-- The song plays of Sparkify, in the shape every gold query reads as `plays`, with the level they
-- were played on. The gold sessions use the 20-minute rule (not Sparkify's own sessionId) so that
-- every source answers the same question.
SELECT user_id, start_time AS played_at, artist_name, song_title AS track_name, level
FROM silver.sparkify_songplays
