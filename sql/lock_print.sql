-- Locks live print $2 of user $1 for a change, so concurrent changes apply one after another.
SELECT p.id
  FROM prints AS p
 WHERE p.id = $2
   AND p.user_id = $1
   AND p.deleted_at IS NULL
   FOR UPDATE
