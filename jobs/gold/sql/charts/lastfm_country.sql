-- The Last.fm weekly country charts of the weeks from $first_day to $last_day (Mondays to
-- Sundays; the engine binds them): the plays per week, country of the user's profile and song
-- (`artist name — track name`), each week dated by its Sunday (UTC); users without a country are
-- left out.
SELECT
  week_ending(l.played_at) AS chart_date,
  u.country AS key,
  l.artist_name || ' — ' || l.track_name AS song,
  count(*) AS streams
FROM silver.lastfm_listens l
JOIN silver.lastfm_users u ON l.user_id = u.user_id
WHERE u.country IS NOT NULL
  AND l.played_at >= CAST($first_day AS DATE)
  AND l.played_at < CAST($last_day AS DATE) + INTERVAL '1' DAY
GROUP BY 1, 2, 3
