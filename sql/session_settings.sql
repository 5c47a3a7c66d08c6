-- The values of the settings named in $1 in this session, as pg_settings writes them
-- (durations in their base unit, milliseconds for the timeouts): name, setting.
SELECT s.name, s.setting
  FROM pg_settings AS s
 WHERE s.name = ANY($1::text[])
