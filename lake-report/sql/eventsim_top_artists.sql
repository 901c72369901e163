-- eventsim: the most played artists.
SELECT name AS artist, streams FROM gold.eventsim_dim_artists ORDER BY streams DESC, artist_id LIMIT 10
