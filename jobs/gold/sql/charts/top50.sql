-- The top 50 of a chart: for each key (a country, a user), the 50 songs with most streams over
-- the chart date's window; ties go to the smaller song (the smaller id, or the smaller text in
-- byte order). Reads `window_streams` (key, song, streams): the streams of the window, maybe
-- counted by day.
WITH counted AS (
  SELECT key, song, sum(streams) AS streams
  FROM window_streams
  GROUP BY key, song
),
ranked AS (
  SELECT key, song, streams, row_number() OVER (PARTITION BY key ORDER BY streams DESC, song ASC) AS rank
  FROM counted
)
SELECT key, rank, song, streams
FROM ranked
WHERE rank <= 50
