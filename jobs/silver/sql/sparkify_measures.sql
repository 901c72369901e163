-- Figures of Sparkify's silver tables for the run record: the song plays whose title, artist
-- and length matched a song of the song data.
SELECT count(song_id) AS songplays_matching_song_data
FROM silver.sparkify_songplays
