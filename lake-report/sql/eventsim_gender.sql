-- eventsim: users by gender (their current period).
SELECT coalesce(gender, 'unknown') AS gender, count(*) AS users
FROM gold.eventsim_dim_users WHERE is_current GROUP BY 1 ORDER BY 1
