-- The user that the live token of kind $2 ('api' or 'session') with SHA-256 $1 belongs to,
-- and when the token expires (NULL: never).
SELECT t.user_id,
       t.expires_at
  FROM api_tokens AS t
 WHERE t.token_hash = $1
   AND t.kind = $2
   AND t.revoked_at IS NULL
   AND (t.expires_at IS NULL OR t.expires_at > now())
