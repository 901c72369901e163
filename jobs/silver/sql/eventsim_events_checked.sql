-- Every bronze eventsim event of the four streams, typed, with its stream and the first rule it
-- breaks (NULL when none). Types are checked, not coerced: ts, sessionId and itemInSession must be
-- whole numbers (ts in epoch milliseconds); userId is a number or a numeric string, and guests'
-- events lack it and the other personal keys (absent is null); zip is a string; each stream's own
-- keys have their types (a listen has its artist, song, duration or older outputs' length, and
-- auth; a page view its page and auth, and the song on NextSong; a login its success; a status
-- change its auth). userAgent loses its literal quotes; artist names and song titles are repaired
-- where they are double-encoded UTF-8. The inner query reads each field once; the outer one names
-- the rule an event breaks.
SELECT
  *,
  to_timestamp_millis(ts) AS event_time,
  coalesce(
    type_error,
    CASE WHEN ts IS NULL THEN 'ts is not whole epoch milliseconds' END,
    CASE WHEN session_id IS NULL THEN 'sessionId is not a whole number' END,
    CASE WHEN item_in_session IS NULL THEN 'itemInSession is not a whole number' END,
    CASE WHEN user_id IS NULL AND user_id_text IS NOT NULL
      THEN 'userId ''' || user_id_text || ''' is not a whole number' END,
    CASE WHEN registration IS NULL AND json_kind(record, 'registration') = 'number'
      THEN 'registration is not whole epoch milliseconds' END
  ) AS reject_reason
FROM (
  SELECT
    stream,
    json_int(record, 'ts') AS ts,
    json_int(record, 'sessionId') AS session_id,
    json_int(record, 'itemInSession') AS item_in_session,
    coalesce(json_int(record, 'userId'), try_cast(json_text(record, 'userId') AS BIGINT)) AS user_id,
    json_text(record, 'userId') AS user_id_text,
    json_text(record, 'level') AS level,
    repair_mojibake(json_text(record, 'firstName')) AS first_name,
    repair_mojibake(json_text(record, 'lastName')) AS last_name,
    json_text(record, 'gender') AS gender,
    json_int(record, 'registration') AS registration,
    repair_mojibake(json_text(record, 'city')) AS city,
    json_text(record, 'zip') AS zip,
    json_text(record, 'state') AS state,
    json_number(record, 'lat') AS lat,
    json_number(record, 'lon') AS lon,
    unquote(json_text(record, 'userAgent')) AS user_agent,
    repair_mojibake(json_text(record, 'artist')) AS artist,
    repair_mojibake(json_text(record, 'song')) AS song,
    coalesce(json_number(record, 'duration'), json_number(record, 'length')) AS duration,
    json_text(record, 'auth') AS auth,
    json_text(record, 'page') AS page,
    json_text(record, 'method') AS method,
    json_int(record, 'status') AS status,
    json_bool(record, 'success') AS success,
    source_object,
    source_line,
    batch,
    record,
    coalesce(
      json_expect(record, 'ts', 'number'),
      json_expect(record, 'sessionId', 'number'),
      json_expect(record, 'itemInSession', 'number'),
      json_expect(record, 'userId', 'number,string,null,missing'),
      json_expect(record, 'level', 'string'),
      json_expect(record, 'firstName', 'string,null,missing'),
      json_expect(record, 'lastName', 'string,null,missing'),
      json_expect(record, 'gender', 'string,null,missing'),
      json_expect(record, 'registration', 'number,null,missing'),
      json_expect(record, 'city', 'string,null,missing'),
      json_expect(record, 'zip', 'string,null,missing'),
      json_expect(record, 'state', 'string,null,missing'),
      json_expect(record, 'lat', 'number,null,missing'),
      json_expect(record, 'lon', 'number,null,missing'),
      json_expect(record, 'userAgent', 'string,null,missing'),
      CASE stream
        WHEN 'listen_events' THEN coalesce(
          json_expect(record, 'artist', 'string'),
          json_expect(record, 'song', 'string'),
          CASE WHEN json_kind(record, 'duration') = 'missing'
            THEN json_expect(record, 'length', 'number')
            ELSE json_expect(record, 'duration', 'number')
          END,
          json_expect(record, 'auth', 'string'))
        WHEN 'page_view_events' THEN coalesce(
          json_expect(record, 'page', 'string'),
          json_expect(record, 'auth', 'string'),
          json_expect(record, 'method', 'string,null,missing'),
          json_expect(record, 'status', 'number,null,missing'),
          json_expect(record, 'artist', 'string,null,missing'),
          json_expect(record, 'song', 'string,null,missing'),
          CASE WHEN json_kind(record, 'duration') = 'missing'
            THEN json_expect(record, 'length', 'number,null,missing')
            ELSE json_expect(record, 'duration', 'number,null')
          END)
        WHEN 'auth_events' THEN json_expect(record, 'success', 'boolean')
        WHEN 'status_change_events' THEN json_expect(record, 'auth', 'string')
      END
    ) AS type_error
  FROM (
    SELECT 'listen_events' AS stream, record, source_object, source_line, batch
    FROM bronze.eventsim_listen_events
    UNION ALL
    SELECT 'page_view_events', record, source_object, source_line, batch
    FROM bronze.eventsim_page_view_events
    UNION ALL
    SELECT 'auth_events', record, source_object, source_line, batch
    FROM bronze.eventsim_auth_events
    UNION ALL
    SELECT 'status_change_events', record, source_object, source_line, batch
    FROM bronze.eventsim_status_change_events
  )
)
