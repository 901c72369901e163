-- The checked events of the auth_events stream (eventsim_events_checked.sql holds the rules).
SELECT * FROM eventsim_events_checked WHERE stream = 'auth_events'
