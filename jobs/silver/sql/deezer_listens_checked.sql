-- Every bronze Deezer log line, typed, with the first rule it breaks (NULL when none). The rules
-- are those of ../shared/bench/deezer.py: around each field, spaces and tabs are ignored, and so
-- are BOMs (U+FEFF) at the start of the line and a CR at its end; an id is decimal digits whose
-- value fits a signed 64-bit integer (leading zeros allowed: 0051 is 51); the country is one of
-- the 249 ISO 3166-1 alpha-2 codes. The day is the log's, from its file name.
-- A log landed again because it changed replaces its earlier landing: only the lines of each
-- object's latest batch (meta.landed_objects) count.
SELECT
  *,
  CASE
    WHEN sng_digits IS NULL THEN 'sng_id ''' || raw_sng_id || ''' is not decimal digits'
    WHEN sng_id IS NULL THEN 'sng_id ''' || raw_sng_id || ''' does not fit a signed 64-bit integer'
    WHEN user_digits IS NULL THEN 'user_id ''' || raw_user_id || ''' is not decimal digits'
    WHEN user_id IS NULL THEN 'user_id ''' || raw_user_id || ''' does not fit a signed 64-bit integer'
    WHEN country IS NULL THEN 'country ''' || raw_country || ''' is not an ISO 3166-1 alpha-2 code'
  END AS reject_reason
FROM (
  SELECT
    to_date(day) AS listen_date,
    day,
    sng_digits,
    try_cast(sng_digits AS BIGINT) AS sng_id,
    user_digits,
    try_cast(user_digits AS BIGINT) AS user_id,
    CASE WHEN code IN (
    'AD', 'AE', 'AF', 'AG', 'AI', 'AL', 'AM', 'AO', 'AQ', 'AR', 'AS', 'AT', 'AU', 'AW', 'AX', 'AZ',
    'BA', 'BB', 'BD', 'BE', 'BF', 'BG', 'BH', 'BI', 'BJ', 'BL', 'BM', 'BN', 'BO', 'BQ', 'BR', 'BS',
    'BT', 'BV', 'BW', 'BY', 'BZ', 'CA', 'CC', 'CD', 'CF', 'CG', 'CH', 'CI', 'CK', 'CL', 'CM', 'CN',
    'CO', 'CR', 'CU', 'CV', 'CW', 'CX', 'CY', 'CZ', 'DE', 'DJ', 'DK', 'DM', 'DO', 'DZ', 'EC', 'EE',
    'EG', 'EH', 'ER', 'ES', 'ET', 'FI', 'FJ', 'FK', 'FM', 'FO', 'FR', 'GA', 'GB', 'GD', 'GE', 'GF',
    'GG', 'GH', 'GI', 'GL', 'GM', 'GN', 'GP', 'GQ', 'GR', 'GS', 'GT', 'GU', 'GW', 'GY', 'HK', 'HM',
    'HN', 'HR', 'HT', 'HU', 'ID', 'IE', 'IL', 'IM', 'IN', 'IO', 'IQ', 'IR', 'IS', 'IT', 'JE', 'JM',
    'JO', 'JP', 'KE', 'KG', 'KH', 'KI', 'KM', 'KN', 'KP', 'KR', 'KW', 'KY', 'KZ', 'LA', 'LB', 'LC',
    'LI', 'LK', 'LR', 'LS', 'LT', 'LU', 'LV', 'LY', 'MA', 'MC', 'MD', 'ME', 'MF', 'MG', 'MH', 'MK',
    'ML', 'MM', 'MN', 'MO', 'MP', 'MQ', 'MR', 'MS', 'MT', 'MU', 'MV', 'MW', 'MX', 'MY', 'MZ', 'NA',
    'NC', 'NE', 'NF', 'NG', 'NI', 'NL', 'NO', 'NP', 'NR', 'NU', 'NZ', 'OM', 'PA', 'PE', 'PF', 'PG',
    'PH', 'PK', 'PL', 'PM', 'PN', 'PR', 'PS', 'PT', 'PW', 'PY', 'QA', 'RE', 'RO', 'RS', 'RU', 'RW',
    'SA', 'SB', 'SC', 'SD', 'SE', 'SG', 'SH', 'SI', 'SJ', 'SK', 'SL', 'SM', 'SN', 'SO', 'SR', 'SS',
    'ST', 'SV', 'SX', 'SY', 'SZ', 'TC', 'TD', 'TF', 'TG', 'TH', 'TJ', 'TK', 'TL', 'TM', 'TN', 'TO',
    'TR', 'TT', 'TV', 'TW', 'TZ', 'UA', 'UG', 'UM', 'US', 'UY', 'UZ', 'VA', 'VC', 'VE', 'VG', 'VI',
    'VN', 'VU', 'WF', 'WS', 'YE', 'YT', 'ZA', 'ZM', 'ZW'
    ) THEN code END AS country,
    raw_sng_id,
    raw_user_id,
    raw_country,
    source_object,
    source_line,
    batch,
    concat_ws('|', raw_sng_id, raw_user_id, raw_country) AS raw_line
  FROM (
    SELECT
      b.day,
      digits(ltrim(b.sng_id, chr(65279))) AS sng_digits,
      digits(b.user_id) AS user_digits,
      regexp_match(b.country, '^[ \t]*([A-Z]{2})[ \t]*\r?$')[1] AS code,
      b.sng_id AS raw_sng_id,
      b.user_id AS raw_user_id,
      b.country AS raw_country,
      b.source_object,
      b.source_line,
      b.batch
    FROM bronze.deezer_listens b
    JOIN (
      SELECT object, max(batch) AS batch FROM meta.landed_objects WHERE source = 'deezer' GROUP BY object
    ) latest ON b.source_object = latest.object AND b.batch = latest.batch
  )
)
