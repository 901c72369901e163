-- silver.sparkify_time: every distinct song play start time, broken into units (UTC).
SELECT DISTINCT
  start_time,
  date_part('hour', start_time) AS hour,
  date_part('day', start_time) AS day,
  date_part('week', start_time) AS week,
  date_part('month', start_time) AS month,
  date_part('year', start_time) AS year,
  date_part('dow', start_time) AS weekday
FROM silver.sparkify_songplays
