-- eventsim: songs played per US state.
SELECT state, sum(streams) AS streams FROM gold.eventsim_streams_by_state GROUP BY state ORDER BY streams DESC, state LIMIT 15
