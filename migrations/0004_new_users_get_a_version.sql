-- A new user gets a data version at once, drawn from the same sequence as every other.
--
-- Workers keep answers labelled with a user's id and data version (service/answers.py).
-- A user id can be used again: after TRUNCATE ... RESTART IDENTITY, or an import with
-- explicit ids into an emptied database. Deleting a user announces nothing, so a worker
-- may still remember the old user's version under that id. A fresh number for the new
-- user, announced like any change, never equals a label of the old user's answers.

CREATE FUNCTION users_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_data_versions(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_inserted AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_inserted();
