-- The weeks with Last.fm plays from $first_day to $last_day, each dated by its Sunday (weeks run
-- Monday to Sunday, UTC). The engine binds the days a run charts, or NULL for no bound: a run
-- that charts a few weeks reads only their plays.
SELECT DISTINCT week_ending(played_at) AS chart_date
FROM silver.lastfm_listens
WHERE ($first_day IS NULL OR played_at >= CAST($first_day AS DATE))
  AND ($last_day IS NULL OR played_at < CAST($last_day AS DATE) + INTERVAL '1' DAY)
