-- Creates a user with email $1 and password hash $2 (NULL: cannot log in with a password).
INSERT INTO users (email, password_hash)
VALUES ($1, $2)
RETURNING id
