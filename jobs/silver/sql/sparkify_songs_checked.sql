-- Every bronze Sparkify song record, typed, with the first rule it breaks (NULL when none).
-- Titles and artist names are repaired where they are double-encoded UTF-8. The inner query
-- reads each field once; the outer one names the rule a record breaks.
SELECT
  *,
  coalesce(
    type_error,
    CASE WHEN is_blank(song_id) THEN 'song_id is empty' END,
    CASE WHEN is_blank(artist_id) THEN 'artist_id is empty' END,
    CASE WHEN year IS NULL AND json_kind(record, 'year') = 'number' THEN 'year is not a whole number' END
  ) AS reject_reason
FROM (
  SELECT
    json_text(record, 'song_id') AS song_id,
    repair_mojibake(json_text(record, 'title')) AS title,
    json_text(record, 'artist_id') AS artist_id,
    json_int(record, 'year') AS year,
    json_number(record, 'duration') AS duration,
    repair_mojibake(json_text(record, 'artist_name')) AS artist_name,
    json_text(record, 'artist_location') AS artist_location,
    json_number(record, 'artist_latitude') AS artist_latitude,
    json_number(record, 'artist_longitude') AS artist_longitude,
    source_object,
    source_line,
    batch,
    record,
    coalesce(
      json_expect(record, 'song_id', 'string'),
      json_expect(record, 'title', 'string'),
      json_expect(record, 'artist_id', 'string'),
      json_expect(record, 'artist_name', 'string'),
      json_expect(record, 'duration', 'number'),
      json_expect(record, 'year', 'number,null'),
      json_expect(record, 'artist_location', 'string,null,missing'),
      json_expect(record, 'artist_latitude', 'number,null,missing'),
      json_expect(record, 'artist_longitude', 'number,null,missing')
    ) AS type_error
  FROM bronze.sparkify_songs
)
