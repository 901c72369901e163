-- silver.deezer_streams: every valid log line is one stream (identical lines are separate
-- streams).
SELECT
  listen_date, sng_id, user_id, country, source_object, source_line,
  date_part('year', listen_date) AS year,
  date_part('month', listen_date) AS month
FROM deezer_listens_checked
WHERE reject_reason IS NULL
