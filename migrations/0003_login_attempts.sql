-- Login attempts counted per email and per client address, so that password guessing is
-- refused (429) before argon2 runs, and the count holds across workers and machines.
--
-- One row per key: the attempts of a window that opened with the key's first attempt and
-- ends at window_ends, after which the next attempt opens a new window. Rows of ended
-- windows are deleted by later attempts (sql/claim_login_attempt.sql), so the table holds
-- about the keys seen in the last window.
--
-- UNLOGGED: these counts are worth no WAL. A crash of PostgreSQL empties the table, which
-- forgives the attempts of at most one window; standbys do not see it.
CREATE UNLOGGED TABLE login_attempts (
    -- 'email': the key is login_email_key(email); 'address': the client's address, or the
    -- IPv6 /64 network it belongs to (service/limits.py).
    kind        text NOT NULL CHECK (kind IN ('email', 'address')),
    key         text NOT NULL,
    attempts    integer NOT NULL CHECK (attempts >= 0),
    window_ends timestamptz NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Finds the rows of ended windows to delete.
CREATE INDEX login_attempts_window_ends ON login_attempts (window_ends);

-- The key of an email: its SHA-256 after the same lower() that matches emails at login, so
-- that every spelling of one account shares a count, emails of any length fit the index,
-- and the emails that guessers type are not kept.
CREATE FUNCTION login_email_key(email text) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(lower(email), 'UTF8')), 'hex')
$$;
