-- silver.deezer_user_song_daily: streams per day, user and song, whatever the country of each
-- stream, from the streams of the days this run rebuilds.
SELECT listen_date AS day, user_id, sng_id, count(*) AS streams, year, month
FROM silver.deezer_streams
GROUP BY listen_date, user_id, sng_id, year, month
