-- gold.sparkify_daily_active_users: distinct users with a song play per day (UTC), in all and
-- by the level they played on.
SELECT
  CAST(start_time AS DATE) AS day,
  count(DISTINCT user_id) AS active_users,
  count(DISTINCT CASE WHEN level = 'paid' THEN user_id END) AS paid_users,
  count(DISTINCT CASE WHEN level = 'free' THEN user_id END) AS free_users
FROM silver.sparkify_songplays
GROUP BY 1
