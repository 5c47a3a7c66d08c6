-- The migrations applied so far, with the checksum of each file as it was applied.
SELECT m.version,
       m.checksum
  FROM schema_migrations AS m
 ORDER BY m.version
