-- Every bronze Last.fm profile line, typed (empty fields become NULL), with the first rule it
-- breaks (NULL when it breaks none).
SELECT
  user_id,
  nullif(gender, '') AS gender,
  try_cast(nullif(age, '') AS INT) AS age,
  nullif(country, '') AS country,
  try_parse_date(nullif(registered, ''), '%b %d, %Y') AS registered,
  source_object,
  source_line,
  ingested_at,
  CASE
    WHEN is_blank(user_id) THEN 'user_id is empty or only white space'
    WHEN age <> '' AND try_cast(age AS INT) IS NULL
      THEN 'age ''' || age || ''' is not a whole number'
    WHEN registered <> '' AND try_parse_date(registered, '%b %d, %Y') IS NULL
      THEN 'registered ''' || registered || ''' is not a date like ''Aug 13, 2006'''
  END AS reject_reason,
  concat_ws(chr(9), user_id, gender, age, country, registered) AS raw_line
FROM bronze.lastfm_profiles
