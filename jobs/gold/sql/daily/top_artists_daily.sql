-- gold.<source>_top_artists_daily: the 10 most played artists of each day (UTC); ties by name.
SELECT day, rank, artist_name, plays
FROM (
  SELECT day, artist_name, plays, row_number() OVER (PARTITION BY day ORDER BY plays DESC, artist_name) AS rank
  FROM (
    SELECT CAST(played_at AS DATE) AS day, artist_name, count(*) AS plays
    FROM plays
    GROUP BY 1, 2
  )
)
WHERE rank <= 10
