-- The Deezer country chart of one day D: the streams per country and song of each day from
-- $first_day to $last_day (D-6 to D; the engine binds them), so that the scan reads only those
-- days' files.
SELECT CAST($last_day AS DATE) AS chart_date, country AS key, sng_id AS song, streams
FROM silver.deezer_country_song_daily
WHERE day BETWEEN $first_day AND $last_day
