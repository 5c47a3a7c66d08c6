-- One call to run after data changed without the triggers, or after a restore:
--     SELECT refresh_data_versions();
--
-- Writes that fire no trigger (session_replication_role = replica, as pg_restore
-- --disable-triggers and logical replication do) move no version, so polls may keep getting
-- 304 and workers their kept answers. Bumping every user fixes that only if the new numbers
-- are above every number handed out before: a restore puts data_version_seq back to its
-- value at dump time, while workers and clients still hold the later ones. So the sequence
-- first jumps by 10^12, more numbers than any history of changes draws, then every user
-- gets a new version, announced as any change is.

CREATE FUNCTION refresh_data_versions() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM setval('data_version_seq', (SELECT last_value FROM data_version_seq) + 1000000000000);
    PERFORM bump_data_versions(ARRAY(SELECT id FROM users));
END;
$$;
