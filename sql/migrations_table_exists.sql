-- True when schema_migrations exists, that is when `printapi migrate` has run here before.
SELECT to_regclass('schema_migrations') IS NOT NULL AS present
