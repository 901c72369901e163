-- The checked events of the status_change_events stream (eventsim_events_checked.sql holds the rules).
SELECT * FROM eventsim_events_checked WHERE stream = 'status_change_events'
