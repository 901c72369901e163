-- The weeks with Last.fm plays, each dated by its Sunday (weeks run Monday to Sunday, UTC).
SELECT DISTINCT CAST(date_trunc('week', played_at) AS DATE) + INTERVAL '6' DAY AS chart_date
FROM silver.lastfm_listens
