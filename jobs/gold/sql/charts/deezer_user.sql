-- The Deezer user chart of one day D: the streams per user and song of each day from $first_day
-- to $last_day (D-6 to D), whatever the country of each stream.
-- The chart date is written from the row (greatest(day, D) is D for every day of the window)
-- rather than as a constant: Ballista loses a constant's known order across a shuffle, and
-- the rank's PARTITION BY chart_date would then fail on a cluster.
SELECT greatest(day, CAST($last_day AS DATE)) AS chart_date, user_id AS key, sng_id AS song, streams
FROM silver.deezer_user_song_daily
WHERE day BETWEEN $first_day AND $last_day
