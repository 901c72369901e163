-- eventsim: logins per day, succeeded and failed.
SELECT CAST(d AS VARCHAR) AS day, succeeded, failed
FROM (SELECT day AS d, logins AS succeeded, failed_logins AS failed FROM gold.eventsim_activity_daily)
ORDER BY d
