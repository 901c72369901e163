-- Every bronze Sparkify event (eventsim), typed, with the first rule it breaks (NULL when none).
-- `ts` is epoch milliseconds; `userId` "" is a logged-out visitor, not a user; `registration`
-- is epoch milliseconds written as a float. Song titles and artist names are repaired where
-- they are double-encoded UTF-8. The inner query reads each field once; the outer one names
-- the rule an event breaks.
SELECT
  *,
  to_timestamp_millis(ts) AS event_time,
  coalesce(
    type_error,
    CASE WHEN ts IS NULL THEN 'ts is not whole epoch milliseconds' END,
    CASE WHEN registration IS NULL AND json_kind(record, 'registration') = 'number'
      THEN 'registration is not whole epoch milliseconds' END,
    CASE WHEN page = 'NextSong' THEN coalesce(
      CASE WHEN user_id = '' THEN 'a NextSong event without a user (userId is empty)' END,
      json_expect(record, 'song', 'string'),
      json_expect(record, 'artist', 'string'),
      json_expect(record, 'length', 'number')
    ) END
  ) AS reject_reason
FROM (
  SELECT
    json_text(record, 'page') AS page,
    json_text(record, 'userId') AS user_id,
    json_int(record, 'ts') AS ts,
    json_text(record, 'level') AS level,
    json_text(record, 'firstName') AS first_name,
    json_text(record, 'lastName') AS last_name,
    json_text(record, 'gender') AS gender,
    json_text(record, 'location') AS location,
    json_text(record, 'userAgent') AS user_agent,
    json_int(record, 'sessionId') AS session_id,
    json_int(record, 'itemInSession') AS item_in_session,
    repair_mojibake(json_text(record, 'song')) AS song_title,
    repair_mojibake(json_text(record, 'artist')) AS artist_name,
    json_number(record, 'length') AS song_length,
    json_int(record, 'registration') AS registration,
    source_object,
    source_line,
    batch,
    record,
    coalesce(
      json_expect(record, 'page', 'string'),
      json_expect(record, 'ts', 'number'),
      json_expect(record, 'userId', 'string'),
      json_expect(record, 'sessionId', 'number'),
      json_expect(record, 'itemInSession', 'number'),
      json_expect(record, 'level', 'string')
    ) AS type_error
  FROM bronze.sparkify_events
)
