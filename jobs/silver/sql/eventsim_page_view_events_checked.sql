-- The checked events of the page_view_events stream (eventsim_events_checked.sql holds the rules).
SELECT * FROM eventsim_events_checked WHERE stream = 'page_view_events'
