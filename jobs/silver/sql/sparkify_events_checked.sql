-- Every bronze Sparkify event (eventsim), typed, with the first rule it breaks (NULL when none).
-- `ts` is epoch milliseconds; `userId` "" is a logged-out visitor, not a user; `registration`
-- is epoch milliseconds written as a float. Song titles and artist names are repaired where
-- they are double-encoded UTF-8.
SELECT
  json_text(record, 'page') AS page,
  json_text(record, 'userId') AS user_id,
  json_int(record, 'ts') AS ts,
  to_timestamp_millis(json_int(record, 'ts')) AS event_time,
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
  record,
  coalesce(
    json_expect(record, 'page', 'string'),
    json_expect(record, 'ts', 'number'),
    json_expect(record, 'userId', 'string'),
    json_expect(record, 'sessionId', 'number'),
    json_expect(record, 'itemInSession', 'number'),
    json_expect(record, 'level', 'string'),
    CASE WHEN json_int(record, 'ts') IS NULL THEN 'ts is not whole epoch milliseconds' END,
    CASE WHEN json_kind(record, 'registration') = 'number' AND json_int(record, 'registration') IS NULL
      THEN 'registration is not whole epoch milliseconds' END,
    CASE WHEN json_text(record, 'page') = 'NextSong' THEN coalesce(
      CASE WHEN json_text(record, 'userId') = '' THEN 'a NextSong event without a user (userId is empty)' END,
      json_expect(record, 'song', 'string'),
      json_expect(record, 'artist', 'string'),
      json_expect(record, 'length', 'number')
    ) END
  ) AS reject_reason
FROM bronze.sparkify_events
