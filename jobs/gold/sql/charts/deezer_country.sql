-- The Deezer country charts' window: for each chart date D, the streams per country and song of
-- each day from D-6 to D. $first_day and $last_day, bound by the engine, span every window, so
-- that the scan reads only those days' files.
SELECT c.chart_date, a.country AS key, a.sng_id AS song, a.streams
FROM chart_dates c
JOIN silver.deezer_country_song_daily a
  ON a.day BETWEEN c.chart_date - INTERVAL '6' DAY AND c.chart_date
WHERE a.day BETWEEN $first_day AND $last_day
