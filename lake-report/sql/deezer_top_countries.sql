-- Deezer, the latest chart date: the top 10 of the three countries with most streams.
WITH latest AS (
  SELECT max(chart_date) AS day FROM gold.deezer_country_top50
),
largest AS (
  SELECT country, sum(streams) AS total
  FROM gold.deezer_country_top50
  WHERE chart_date = (SELECT day FROM latest)
  GROUP BY country
  ORDER BY total DESC, country
  LIMIT 3
)
SELECT c.country || ' #' || CAST(c.rank AS VARCHAR) || ' ' || CAST(c.sng_id AS VARCHAR) AS song, c.streams
FROM gold.deezer_country_top50 c
JOIN largest l ON c.country = l.country
WHERE c.chart_date = (SELECT day FROM latest) AND c.rank <= 10
ORDER BY l.total DESC, c.country, c.rank
