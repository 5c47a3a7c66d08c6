-- Stores the SHA-256 $2 of a new token for user $1.
INSERT INTO api_tokens (user_id, token_hash)
VALUES ($1, $2)
RETURNING id
