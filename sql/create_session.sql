-- Stores the SHA-256 $2 of a login session of user $1 that expires in $3 seconds, and drops
-- that user's ended sessions on the way.
WITH ended AS (
    DELETE FROM api_tokens
     WHERE user_id = $1
       AND kind = 'session'
       AND (revoked_at IS NOT NULL OR expires_at <= now())
)
INSERT INTO api_tokens (user_id, kind, token_hash, expires_at)
VALUES ($1, 'session', $2, now() + make_interval(secs => $3))
RETURNING id
