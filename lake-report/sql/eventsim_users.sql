-- eventsim: users in all, and active on the last day with data.
SELECT
  (SELECT count(DISTINCT user_id) FROM gold.eventsim_dim_users) AS total_users,
  (SELECT max(active_users) FROM gold.eventsim_activity_daily
   WHERE day = (SELECT max(day) FROM gold.eventsim_activity_daily)) AS active_users
