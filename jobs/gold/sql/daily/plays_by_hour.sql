-- gold.<source>_plays_by_hour: plays by day of week (0 = Sunday) and hour (UTC), by level.
SELECT
  date_part('dow', played_at) AS weekday,
  date_part('hour', played_at) AS hour,
  level,
  count(*) AS plays
FROM plays
GROUP BY 1, 2, 3
