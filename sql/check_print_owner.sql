-- The id of print $2 when it is live and belongs to user $1; no row otherwise.
SELECT p.id
  FROM prints AS p
 WHERE p.id = $2
   AND p.user_id = $1
   AND p.deleted_at IS NULL
