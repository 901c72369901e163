-- The Deezer user charts' window: for each chart date D, the streams per user and song of each
-- day from D-6 to D, whatever the country of each stream. $first_day and $last_day, bound by the
-- engine, span every window, so that the scan reads only those days' files.
SELECT c.chart_date, a.user_id AS key, a.sng_id AS song, a.streams
FROM chart_dates c
JOIN silver.deezer_user_song_daily a
  ON a.day BETWEEN c.chart_date - INTERVAL '6' DAY AND c.chart_date
WHERE a.day BETWEEN $first_day AND $last_day
