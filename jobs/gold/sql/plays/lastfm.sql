-- The plays of Last.fm, in the shape every gold query reads as `plays`.
SELECT user_id, played_at, artist_name, track_name
FROM silver.lastfm_listens
