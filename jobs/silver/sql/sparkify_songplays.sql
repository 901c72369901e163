-- silver.sparkify_songplays: every valid NextSong event, with song_id and artist_id where the
-- event's title, artist name and length (to 1 ms) match a song of silver.sparkify_songs and
-- its artist; several matching songs resolve to the smallest song id.
WITH catalogue AS (
  SELECT s.title, a.name, round(s.duration, 3) AS duration, min(s.song_id) AS song_id, min(s.artist_id) AS artist_id
  FROM silver.sparkify_songs s
  JOIN silver.sparkify_artists a ON s.artist_id = a.artist_id
  GROUP BY s.title, a.name, round(s.duration, 3)
)
SELECT
  md5(concat_ws('|', e.user_id, CAST(e.session_id AS VARCHAR), CAST(e.item_in_session AS VARCHAR),
                CAST(e.ts AS VARCHAR))) AS songplay_id,
  e.event_time AS start_time,
  e.user_id,
  e.level,
  c.song_id,
  c.artist_id,
  e.session_id,
  e.item_in_session,
  e.location,
  CASE
    WHEN length(e.user_agent) >= 2 AND starts_with(e.user_agent, '"') AND ends_with(e.user_agent, '"')
    THEN substr(e.user_agent, 2, length(e.user_agent) - 2)
    ELSE e.user_agent
  END AS user_agent,
  e.song_title,
  e.artist_name,
  e.song_length,
  e.source_object,
  e.source_line,
  date_part('year', e.event_time) AS year,
  date_part('month', e.event_time) AS month
FROM sparkify_events_checked e
LEFT JOIN catalogue c
  ON c.title = e.song_title AND c.name = e.artist_name AND c.duration = round(e.song_length, 3)
WHERE e.reject_reason IS NULL AND e.page = 'NextSong'
