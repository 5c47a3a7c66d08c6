-- Every print of user $1 in id order, soft-deleted ones included, with its frames.
SELECT v.*
  FROM print_rows AS v
 WHERE v.user_id = $1
 ORDER BY v.id
