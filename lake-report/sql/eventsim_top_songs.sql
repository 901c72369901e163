-- eventsim: the most played songs.
SELECT title || ' — ' || artist_name AS song, streams FROM gold.eventsim_dim_songs ORDER BY streams DESC, song_id LIMIT 10
