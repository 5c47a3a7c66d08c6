-- The user that the unrevoked token with SHA-256 $1 belongs to.
SELECT t.user_id
  FROM api_tokens AS t
 WHERE t.token_hash = $1
   AND t.revoked_at IS NULL
