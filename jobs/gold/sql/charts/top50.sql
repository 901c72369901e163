-- The top 50 of a chart: for each chart date and key (a country, a user), the 50 songs with most
-- streams over the date's window; ties go to the smaller song (the smaller id, or the smaller
-- text in byte order). Reads `window_streams` (chart_date, key, song, streams): the streams of
-- the windows charted, maybe counted by day.
WITH counted AS (
  SELECT chart_date, key, song, sum(streams) AS streams
  FROM window_streams
  GROUP BY chart_date, key, song
),
ranked AS (
  SELECT
    chart_date, key, song, streams,
    row_number() OVER (PARTITION BY chart_date, key ORDER BY streams DESC, song ASC) AS rank
  FROM counted
)
SELECT chart_date, key, rank, song, streams
FROM ranked
WHERE rank <= 50
