-- silver.lastfm_listens: the accepted plays, exact duplicates (same user, time, artist name
-- and track name) counted once; the first landed copy is kept.
-- Finding copies by comparing every play with its neighbours in key order would sort all
-- plays with every column they carry. Instead, lastfm_repeated_keys holds the hashes of the
-- keys that occur more than once: a play whose key hash is not among them is unique and
-- passes straight through. The few others (the copies, and the rare hash collision) are
-- compared by value: copies of a play sort next to each other within their user, first landed
-- first, so a row is a copy when it repeats the previous row's time and names.
WITH accepted AS (
  SELECT * FROM lastfm_plays_checked WHERE reject_reason IS NULL
),
candidates AS (
  SELECT
    *,
    coalesce(
      played_at = lag(played_at) OVER copies
        AND artist_name = lag(artist_name) OVER copies
        AND track_name = lag(track_name) OVER copies,
      false
    ) AS is_copy
  FROM accepted
  WHERE key_hash IN (SELECT key_hash FROM lastfm_repeated_keys)
  WINDOW copies AS (
    PARTITION BY user_id
    ORDER BY played_at, artist_name, track_name, source_object, source_line
  )
)
SELECT
  user_id, played_at, artist_mbid, artist_name, track_mbid, track_name, source_object, source_line,
  date_part('year', played_at) AS year,
  date_part('month', played_at) AS month
FROM (
  SELECT *, false AS is_copy
  FROM accepted
  WHERE NOT EXISTS (SELECT 1 FROM lastfm_repeated_keys r WHERE r.key_hash = accepted.key_hash)
  UNION ALL
  SELECT * FROM candidates
)
WHERE NOT is_copy
