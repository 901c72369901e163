-- silver.deezer_quarantine: every log line a rule rejected, with the reason and lineage.
SELECT 'silver.deezer_streams' AS table_name, source_object, source_line, raw_line, reject_reason AS reason, batch
FROM deezer_listens_checked
WHERE reject_reason IS NOT NULL
