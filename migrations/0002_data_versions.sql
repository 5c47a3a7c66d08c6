-- A version number per user that moves whenever anything the API shows of that user's
-- prints changes, so that a poll can be answered "not modified" without reading the prints.
-- Versions come from one sequence, so a number is never reused, not even across users.
-- Each change is also announced on the channel printapi_changes as "user_id version", and
-- each changed or deleted token on printapi_tokens, so that workers can keep both in memory.

CREATE SEQUENCE data_version_seq;

CREATE TABLE user_data_versions (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version bigint NOT NULL
);

-- Gives each user in the set a new version and announces it; called once per statement.
CREATE FUNCTION bump_data_versions(user_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    changed record;
BEGIN
    FOR changed IN
        -- In id order, so that two statements bumping the same users never deadlock.
        INSERT INTO user_data_versions AS v (user_id, version)
        SELECT u.id, nextval('data_version_seq')
          FROM (SELECT DISTINCT id FROM unnest(user_ids) AS id WHERE id IS NOT NULL) AS u
          -- A user being deleted takes their prints along: nothing left to version.
          JOIN users ON users.id = u.id
         ORDER BY u.id
        -- The number is drawn again once the row is locked: a statement that waited for
        -- another's commit must not write a number older than the one that commit wrote.
        ON CONFLICT (user_id) DO UPDATE SET version = nextval('data_version_seq')
        RETURNING v.user_id, v.version
    LOOP
        PERFORM pg_notify('printapi_changes', changed.user_id || ' ' || changed.version);
    END LOOP;
END;
$$;

CREATE FUNCTION prints_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_data_versions(ARRAY(SELECT DISTINCT user_id FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM bump_data_versions(ARRAY(
            SELECT user_id FROM new_rows UNION SELECT user_id FROM old_rows));
    ELSE
        PERFORM bump_data_versions(ARRAY(SELECT DISTINCT user_id FROM old_rows));
    END IF;
    RETURN NULL;
END;
$$;

-- PostgreSQL allows transition tables on single-event triggers only: one trigger per event.
CREATE TRIGGER prints_inserted AFTER INSERT ON prints
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION prints_changed();
CREATE TRIGGER prints_updated AFTER UPDATE ON prints
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION prints_changed();
CREATE TRIGGER prints_deleted AFTER DELETE ON prints
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION prints_changed();

CREATE FUNCTION print_shot_feedbacks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_data_versions(ARRAY(
            SELECT DISTINCT p.user_id FROM new_rows AS f JOIN prints AS p ON p.id = f.print_id));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM bump_data_versions(ARRAY(
            SELECT p.user_id FROM new_rows AS f JOIN prints AS p ON p.id = f.print_id
             UNION
            SELECT p.user_id FROM old_rows AS f JOIN prints AS p ON p.id = f.print_id));
    ELSE
        -- A print deleted with its frames is gone already; its own trigger bumps its user.
        PERFORM bump_data_versions(ARRAY(
            SELECT DISTINCT p.user_id FROM old_rows AS f JOIN prints AS p ON p.id = f.print_id));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER print_shot_feedbacks_inserted AFTER INSERT ON print_shot_feedbacks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION print_shot_feedbacks_changed();
CREATE TRIGGER print_shot_feedbacks_updated AFTER UPDATE ON print_shot_feedbacks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION print_shot_feedbacks_changed();
CREATE TRIGGER print_shot_feedbacks_deleted AFTER DELETE ON print_shot_feedbacks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION print_shot_feedbacks_changed();

-- TRUNCATE empties a table without a row to tell whose data changed: every user moves.
CREATE FUNCTION prints_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_data_versions(ARRAY(SELECT id FROM users));
    RETURN NULL;
END;
$$;

CREATE TRIGGER prints_truncated AFTER TRUNCATE ON prints
    FOR EACH STATEMENT EXECUTE FUNCTION prints_truncated();
CREATE TRIGGER print_shot_feedbacks_truncated AFTER TRUNCATE ON print_shot_feedbacks
    FOR EACH STATEMENT EXECUTE FUNCTION prints_truncated();

-- Announces every changed token (revoked, expired early, rehashed), so that workers drop
-- it from memory at once; updates of tokens are rare.
CREATE FUNCTION api_tokens_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('printapi_tokens', encode(o.token_hash, 'hex')) FROM old_rows AS o;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_tokens_changed AFTER UPDATE ON api_tokens
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_changed();

CREATE FUNCTION api_tokens_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('printapi_tokens', encode(o.token_hash, 'hex')) FROM old_rows AS o;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_deleted();

-- "*": forget every token.
CREATE FUNCTION api_tokens_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('printapi_tokens', '*');
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_tokens_truncated AFTER TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_truncated();

-- XXX: writes that fire no trigger (session_replication_role = replica, as pg_restore
-- --disable-triggers and logical replication do) move no version; after such a load run
-- SELECT bump_data_versions(ARRAY(SELECT id FROM users)), or polls may keep getting 304.
