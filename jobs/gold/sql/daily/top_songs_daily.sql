-- gold.<source>_top_songs_daily: the 10 most played songs of each day (UTC); ties by artist name,
-- then title (byte order).
SELECT day, rank, song_title, artist_name, plays
FROM (
  SELECT
    day, song_title, artist_name, plays,
    row_number() OVER (PARTITION BY day ORDER BY plays DESC, artist_name, song_title) AS rank
  FROM (
    SELECT CAST(played_at AS DATE) AS day, track_name AS song_title, artist_name, count(*) AS plays
    FROM plays
    GROUP BY 1, 2, 3
  )
)
WHERE rank <= 10
