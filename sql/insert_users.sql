-- Creates users with the emails $1 and password hashes $2, returning each id with its email.
INSERT INTO users (email, password_hash)
SELECT u.email, u.password_hash
  FROM unnest($1::text[], $2::text[]) AS u (email, password_hash)
RETURNING id, email
