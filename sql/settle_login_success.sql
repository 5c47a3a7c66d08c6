-- After the email $1 logged in from the address $2: forgets the email's attempts, and
-- takes this attempt back from the address's window that ends at $3, since it did not fail.
WITH forgotten AS (
    DELETE FROM login_attempts
     WHERE kind = 'email'
       AND key = login_email_key($1)
)
UPDATE login_attempts
   SET attempts = attempts - 1
 WHERE kind = 'address'
   AND key = $2
   AND window_ends = $3
   AND attempts > 0
