-- eventsim: upgrades and downgrades per day.
SELECT CAST(d AS VARCHAR) AS day, upgrades, downgrades
FROM (SELECT day AS d, upgrades, downgrades FROM gold.eventsim_activity_daily)
ORDER BY d
