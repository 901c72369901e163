-- The hashes of the keys (user, time, artist name, track name) that more than one accepted play
-- has: only these plays can be copies (see lastfm_listens.sql). Computed before the listens and
-- held in memory: a few thousand 8-byte hashes at Last.fm scale, half the plays at the very most.
SELECT key_hash
FROM lastfm_plays_checked
WHERE reject_reason IS NULL
GROUP BY 1
HAVING count(*) > 1
