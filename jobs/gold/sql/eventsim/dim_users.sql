-- gold.eventsim_dim_users: one row per period a user spent on one level (type-2 slowly changing
-- dimension), from the listen and status-change events: a period starts with the user's first
-- event and with every event whose level differs from the one before.
WITH events AS (
  SELECT user_id, first_name, last_name, gender, registered_at, level, event_time, session_id, item_in_session
  FROM silver.eventsim_listen_events WHERE user_id IS NOT NULL
  UNION ALL
  SELECT user_id, first_name, last_name, gender, registered_at, level, event_time, session_id, item_in_session
  FROM silver.eventsim_status_change_events WHERE user_id IS NOT NULL
),
changes AS (
  SELECT
    *,
    lag(level) OVER (PARTITION BY user_id ORDER BY event_time, session_id, item_in_session) AS previous_level
  FROM events
),
periods AS (
  SELECT user_id, first_name, last_name, gender, registered_at, level, event_time AS valid_from
  FROM changes
  WHERE previous_level IS NULL OR previous_level <> level
)
SELECT
  user_id, first_name, last_name, gender, registered_at, level, valid_from,
  lead(valid_from) OVER (PARTITION BY user_id ORDER BY valid_from) AS valid_to,
  lead(valid_from) OVER (PARTITION BY user_id ORDER BY valid_from) IS NULL AS is_current
FROM periods
