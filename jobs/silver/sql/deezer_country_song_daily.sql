-- silver.deezer_country_song_daily: streams per day, country and song, from the streams of the
-- days this run rebuilds (the engine keeps only those days: the scan reads only their files).
SELECT listen_date AS day, country, sng_id, count(*) AS streams, year, month
FROM silver.deezer_streams
GROUP BY listen_date, country, sng_id, year, month
