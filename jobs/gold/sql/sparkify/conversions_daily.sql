-- gold.sparkify_conversions_daily: users whose level went from free to paid, counted on the day
-- their paid period began (UTC).
SELECT CAST(valid_from AS DATE) AS day, count(*) AS conversions
FROM (
  SELECT level, valid_from, lag(level) OVER (PARTITION BY user_id ORDER BY valid_from) AS previous_level
  FROM silver.sparkify_users_history
)
WHERE level = 'paid' AND previous_level = 'free'
GROUP BY 1
