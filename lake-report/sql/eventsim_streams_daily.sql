-- eventsim: songs played per day.
SELECT CAST(d AS VARCHAR) AS day, streams
FROM (SELECT day AS d, streams FROM gold.eventsim_activity_daily)
ORDER BY d
