-- Every bronze Last.fm profile line, typed (empty fields become NULL), with the first rule it
-- breaks (NULL when it breaks none). The inner query parses each field once.
SELECT
  user_id, gender, age, country, registered, source_object, source_line, batch, ingested_at, raw_line,
  CASE
    WHEN is_blank(user_id) THEN 'user_id is empty or only white space'
    WHEN raw_age <> '' AND age IS NULL
      THEN 'age ''' || raw_age || ''' is not a whole number'
    WHEN raw_registered <> '' AND registered IS NULL
      THEN 'registered ''' || raw_registered || ''' is not a date like ''Aug 13, 2006'''
  END AS reject_reason
FROM (
  SELECT
    user_id,
    nullif(gender, '') AS gender,
    age AS raw_age,
    try_cast(nullif(age, '') AS INT) AS age,
    nullif(country, '') AS country,
    registered AS raw_registered,
    try_parse_date(nullif(registered, ''), '%b %d, %Y') AS registered,
    source_object,
    source_line,
    batch,
    ingested_at,
    concat_ws(chr(9), user_id, gender, age, country, registered) AS raw_line
  FROM bronze.lastfm_profiles
)
