-- silver.sparkify_users_history: one row per period a user spent on one level; a period starts
-- with the user's first event and with every event whose level differs from the one before.
WITH events AS (
  SELECT
    user_id, first_name, last_name, gender, registration, level, event_time,
    lag(level) OVER (PARTITION BY user_id ORDER BY ts, source_object, source_line) AS previous_level
  FROM sparkify_events_checked
  WHERE reject_reason IS NULL AND user_id <> ''
),
periods AS (
  SELECT user_id, first_name, last_name, gender, registration, level, event_time AS valid_from
  FROM events
  WHERE previous_level IS NULL OR previous_level <> level
)
SELECT
  user_id, first_name, last_name, gender, to_timestamp_millis(registration) AS registered_at, level, valid_from,
  lead(valid_from) OVER (PARTITION BY user_id ORDER BY valid_from) AS valid_to,
  lead(valid_from) OVER (PARTITION BY user_id ORDER BY valid_from) IS NULL AS is_current
FROM periods
