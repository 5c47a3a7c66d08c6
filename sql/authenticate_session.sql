-- The id of user $1 if that user still exists, for a session cookie naming it.
SELECT u.id
  FROM users AS u
 WHERE u.id = $1
