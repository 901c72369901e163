-- Last.fm sessions by their number of plays.
SELECT bucket AS plays, count(*) AS sessions
FROM (
  SELECT
    CASE
      WHEN play_count = 1 THEN '1' WHEN play_count < 5 THEN '2-4' WHEN play_count < 10 THEN '5-9'
      WHEN play_count < 20 THEN '10-19' WHEN play_count < 50 THEN '20-49'
      WHEN play_count < 100 THEN '50-99' WHEN play_count < 200 THEN '100-199' ELSE '200+'
    END AS bucket,
    CASE
      WHEN play_count = 1 THEN 1 WHEN play_count < 5 THEN 2 WHEN play_count < 10 THEN 3
      WHEN play_count < 20 THEN 4 WHEN play_count < 50 THEN 5 WHEN play_count < 100 THEN 6
      WHEN play_count < 200 THEN 7 ELSE 8
    END AS position
  FROM gold.lastfm_sessions
)
GROUP BY bucket, position
ORDER BY position
