-- The user whose email is $1, compared without regard to case, with the password hash.
SELECT u.id,
       u.email,
       u.password_hash
  FROM users AS u
 WHERE lower(u.email) = lower($1)
