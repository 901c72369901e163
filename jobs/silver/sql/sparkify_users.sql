-- silver.sparkify_users: one row per logged-in user, with the level of their latest event.
SELECT user_id, first_name, last_name, gender, to_timestamp_millis(registration) AS registered_at, level
FROM (
  SELECT
    *,
    row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, source_object DESC, source_line DESC) AS latest
  FROM sparkify_events_checked
  WHERE reject_reason IS NULL AND user_id <> ''
)
WHERE latest = 1
