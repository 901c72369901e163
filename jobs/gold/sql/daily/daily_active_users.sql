-- gold.<source>_daily_active_users: distinct users with a play per day (UTC), in all and by the
-- level they played on. Reads `plays` with its `level`.
SELECT
  CAST(played_at AS DATE) AS day,
  count(DISTINCT user_id) AS active_users,
  count(DISTINCT CASE WHEN level = 'paid' THEN user_id END) AS paid_users,
  count(DISTINCT CASE WHEN level = 'free' THEN user_id END) AS free_users
FROM plays
GROUP BY 1
