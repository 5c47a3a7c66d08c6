-- Print $2 of user $1 with its frames, when it is live, and the user's data version as of
-- the same snapshot: the version the print is exactly as of (0 when nothing ever changed).
SELECT v.*,
       coalesce(
           (SELECT d.version FROM user_data_versions AS d WHERE d.user_id = $1),
           0
       ) AS data_version
  FROM print_rows AS v
 WHERE v.id = $2
   AND v.user_id = $1
   AND v.deleted_at IS NULL
