-- Releases the migration lock taken by migrations_lock ($1: the lock key).
SELECT pg_advisory_unlock($1)
