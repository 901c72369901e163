-- The Last.fm country charts' window: the plays of each week per country of the user's profile
-- and song (`artist name — track name`); users without a country are left out.
SELECT
  c.chart_date,
  u.country AS key,
  l.artist_name || ' — ' || l.track_name AS song,
  count(*) AS streams
FROM silver.lastfm_listens l
JOIN silver.lastfm_users u ON l.user_id = u.user_id
JOIN chart_dates c
  ON c.chart_date = CAST(date_trunc('week', l.played_at) AS DATE) + INTERVAL '6' DAY
WHERE u.country IS NOT NULL
GROUP BY c.chart_date, u.country, l.artist_name, l.track_name
