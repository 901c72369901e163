-- The Last.fm country charts' window: the plays from $first_day to $last_day (a week, Monday to
-- Sunday; the engine binds them) per country of the user's profile and song (`artist name —
-- track name`); users without a country are left out.
SELECT u.country AS key, l.artist_name || ' — ' || l.track_name AS song, count(*) AS streams
FROM silver.lastfm_listens l
JOIN silver.lastfm_users u ON l.user_id = u.user_id
WHERE u.country IS NOT NULL
  AND l.played_at >= CAST($first_day AS DATE)
  AND l.played_at < CAST($last_day AS DATE) + INTERVAL '1' DAY
GROUP BY u.country, l.artist_name, l.track_name
