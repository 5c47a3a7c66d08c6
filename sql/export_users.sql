-- Every user in id order, with the password hash so an export can be imported elsewhere.
SELECT u.id,
       u.email,
       u.password_hash
  FROM users AS u
 ORDER BY u.id
