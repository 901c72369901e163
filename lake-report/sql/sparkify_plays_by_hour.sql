-- Sparkify's plays by hour of day (UTC), free and paid users apart.
SELECT CAST(h AS VARCHAR) AS hour, free, paid
FROM (
  SELECT
    hour AS h,
    sum(plays) FILTER (WHERE level = 'free') AS free,
    sum(plays) FILTER (WHERE level = 'paid') AS paid
  FROM gold.sparkify_plays_by_hour
  GROUP BY hour
)
ORDER BY h
