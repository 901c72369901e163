-- gold.sparkify_plays_by_hour: song plays by day of week (0 = Sunday) and hour (UTC), by level.
SELECT
  date_part('dow', start_time) AS weekday,
  date_part('hour', start_time) AS hour,
  level,
  count(*) AS plays
FROM silver.sparkify_songplays
GROUP BY 1, 2, 3
