-- The checked events of the listen_events stream (eventsim_events_checked.sql holds the rules).
SELECT * FROM eventsim_events_checked WHERE stream = 'listen_events'
