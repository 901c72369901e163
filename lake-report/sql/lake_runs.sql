-- The last run of each job: when it ended, how, and what it read and wrote.
SELECT job, outcome, finished_at, rows_in, rows_out, rows_quarantined, run_id
FROM (
  SELECT *, row_number() OVER (PARTITION BY job ORDER BY finished_at DESC) AS n
  FROM meta.runs
)
WHERE n = 1
ORDER BY job
