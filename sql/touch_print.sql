-- Marks print $2 of user $1 as changed now, after a change to its frames.
UPDATE prints
   SET updated_at = now()
 WHERE id = $2
   AND user_id = $1
