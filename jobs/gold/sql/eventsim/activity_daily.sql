-- gold.eventsim_activity_daily: one row per UTC day with any event: listens, distinct users with
-- any event, logins that succeeded and failed, upgrades (a status change to paid), downgrades (to
-- free), cancellations (auth Cancelled), and guests' sessions (sessions with an event of no user).
WITH events AS (
  SELECT CAST(event_time AS DATE) AS day, user_id, session_id, 'listen' AS kind, CAST(NULL AS BOOLEAN) AS success,
         level, auth
  FROM silver.eventsim_listen_events
  UNION ALL
  SELECT CAST(event_time AS DATE), user_id, session_id, 'page', NULL, level, auth
  FROM silver.eventsim_page_view_events
  UNION ALL
  SELECT CAST(event_time AS DATE), user_id, session_id, 'auth', success, level, NULL
  FROM silver.eventsim_auth_events
  UNION ALL
  SELECT CAST(event_time AS DATE), user_id, session_id, 'status', NULL, level, auth
  FROM silver.eventsim_status_change_events
)
SELECT
  day,
  count(*) FILTER (WHERE kind = 'listen') AS streams,
  count(DISTINCT user_id) AS active_users,
  count(*) FILTER (WHERE kind = 'auth' AND success) AS logins,
  count(*) FILTER (WHERE kind = 'auth' AND NOT success) AS failed_logins,
  count(*) FILTER (WHERE kind = 'status' AND auth = 'Logged In' AND level = 'paid') AS upgrades,
  count(*) FILTER (WHERE kind = 'status' AND auth = 'Logged In' AND level = 'free') AS downgrades,
  count(*) FILTER (WHERE kind = 'status' AND auth = 'Cancelled') AS cancellations,
  count(DISTINCT session_id) FILTER (WHERE user_id IS NULL) AS guests_sessions
FROM events
GROUP BY day
