-- silver.lastfm_listens: the accepted plays. Exact duplicates (same user, time, artist name and
-- track name) are counted once, the first copy kept (by object and line, then batch): the
-- table declares that key (`sources.rs`), and the write drops the copies in the sort by month it
-- makes anyway (`batch` is read for it, not written).
SELECT
  user_id, played_at, artist_mbid, artist_name, track_mbid, track_name, source_object, source_line, batch,
  date_part('year', played_at) AS year,
  date_part('month', played_at) AS month
FROM lastfm_plays_checked
WHERE reject_reason IS NULL
