-- Revokes the token whose SHA-256 is $1, returning when it was revoked (kept if it already was).
UPDATE api_tokens
   SET revoked_at = coalesce(revoked_at, now())
 WHERE token_hash = $1
RETURNING revoked_at
