-- The days with a Deezer log, each with the newest bronze batch that brought a log of that day
-- (a log landed again because it changed brings a newer batch). The day is the one in the
-- log's name, listen-YYYYMMDD.log[.gz]: bronze claims only such objects for the source.
SELECT
  to_date(regexp_match(object, 'listen-([0-9]{8})\.log(\.gz)?$')[1], '%Y%m%d') AS day,
  max(batch) AS batch
FROM meta.landed_objects
WHERE source = 'deezer'
GROUP BY 1
