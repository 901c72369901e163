-- eventsim: users by gender and current level.
SELECT
  coalesce(gender, 'unknown') AS gender,
  count(*) FILTER (WHERE level = 'free') AS free,
  count(*) FILTER (WHERE level = 'paid') AS paid
FROM gold.eventsim_dim_users WHERE is_current GROUP BY 1 ORDER BY 1
