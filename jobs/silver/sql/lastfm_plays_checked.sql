-- Every bronze Last.fm play, typed, with the first rule it breaks (NULL when it breaks none).
-- Rules: user id, artist name and track name must not be empty or only white space; the
-- timestamp must be a valid YYYY-MM-DDTHH:MM:SSZ (UTC). Names are kept exactly as written.
-- The inner query parses each field once; the outer one names the rule a row breaks.
SELECT
  *,
  CASE
    WHEN is_blank(user_id) THEN 'user_id is empty or only white space'
    WHEN played_at IS NULL
      THEN 'timestamp ''' || raw_timestamp || ''' is not a valid YYYY-MM-DDTHH:MM:SSZ'
    WHEN is_blank(artist_name) THEN 'artist_name is empty or only white space'
    WHEN is_blank(track_name) THEN 'track_name is empty or only white space'
  END AS reject_reason
FROM (
  SELECT
    user_id,
    "timestamp" AS raw_timestamp,
    parse_utc_timestamp("timestamp") AS played_at,
    nullif(artist_mbid, '') AS artist_mbid,
    artist_name,
    nullif(track_mbid, '') AS track_mbid,
    track_name,
    source_object,
    source_line,
    batch,
    concat_ws(chr(9), user_id, "timestamp", artist_mbid, artist_name, track_mbid, track_name) AS raw_line
  FROM bronze.lastfm_plays
)
