-- The answer: the songs most played in the 50 longest Last.fm sessions.
SELECT track_name || ' — ' || artist_name AS song, play_count AS plays
FROM gold.lastfm_top_songs
ORDER BY rank
