-- silver.lastfm_users: one row per user, from the most recently landed valid profile line.
SELECT user_id, gender, age, country, registered
FROM (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY user_id
      ORDER BY ingested_at DESC, source_object DESC, source_line DESC
    ) AS copy
  FROM lastfm_profiles_checked
  WHERE reject_reason IS NULL
)
WHERE copy = 1
