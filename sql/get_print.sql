-- Print $2 of user $1 with its frames, when it is live.
SELECT v.*
  FROM print_rows AS v
 WHERE v.id = $2
   AND v.user_id = $1
   AND v.deleted_at IS NULL
