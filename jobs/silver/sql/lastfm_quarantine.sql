-- silver.lastfm_quarantine: every bronze row a rule rejected, with the reason and lineage.
SELECT 'silver.lastfm_listens' AS table_name, source_object, source_line, raw_line, reject_reason AS reason, batch
FROM lastfm_plays_checked
WHERE reject_reason IS NOT NULL
UNION ALL
SELECT 'silver.lastfm_users' AS table_name, source_object, source_line, raw_line, reject_reason AS reason, batch
FROM lastfm_profiles_checked
WHERE reject_reason IS NOT NULL
