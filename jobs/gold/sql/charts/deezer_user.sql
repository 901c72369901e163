-- The Deezer user chart of one day D: the streams per user and song of each day from $first_day
-- to $last_day (D-6 to D), whatever the country of each stream.
SELECT CAST($last_day AS DATE) AS chart_date, user_id AS key, sng_id AS song, streams
FROM silver.deezer_user_song_daily
WHERE day BETWEEN $first_day AND $last_day
