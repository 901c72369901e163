-- silver.eventsim_quarantine: every bronze eventsim event a rule rejected, with the stream's table,
-- the reason and the lineage (from each stream's view: a run appends the rejects of the batches
-- it reads).
SELECT 'silver.eventsim_' || stream AS table_name, source_object, source_line, record AS raw_line, reject_reason AS reason, batch
FROM eventsim_listen_events_checked WHERE reject_reason IS NOT NULL
UNION ALL
SELECT 'silver.eventsim_' || stream, source_object, source_line, record, reject_reason, batch
FROM eventsim_page_view_events_checked WHERE reject_reason IS NOT NULL
UNION ALL
SELECT 'silver.eventsim_' || stream, source_object, source_line, record, reject_reason, batch
FROM eventsim_auth_events_checked WHERE reject_reason IS NOT NULL
UNION ALL
SELECT 'silver.eventsim_' || stream, source_object, source_line, record, reject_reason, batch
FROM eventsim_status_change_events_checked WHERE reject_reason IS NOT NULL
