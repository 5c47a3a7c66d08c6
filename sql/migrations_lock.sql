-- Waits for the migration lock, so two processes never migrate at once ($1: the lock key).
SELECT pg_advisory_lock($1)
