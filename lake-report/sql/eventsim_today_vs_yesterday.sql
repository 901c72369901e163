-- eventsim: songs played by hour on the last day with data, against the day before.
WITH last AS (SELECT CAST(max(hour) AS DATE) AS day FROM gold.eventsim_activity_hourly),
by_hour AS (
  SELECT
    date_part('hour', a.hour) AS h,
    sum(a.streams) FILTER (WHERE CAST(a.hour AS DATE) = l.day) AS today,
    sum(a.streams) FILTER (WHERE CAST(a.hour AS DATE) = l.day - INTERVAL '1' DAY) AS yesterday
  FROM gold.eventsim_activity_hourly a CROSS JOIN last l
  GROUP BY date_part('hour', a.hour)
)
SELECT CAST(h AS VARCHAR) AS hour, today, yesterday FROM by_hour ORDER BY h
