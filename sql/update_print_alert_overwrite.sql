-- Sets the user's verdict $3 on live print $2 of user $1.
UPDATE prints
   SET alert_overwrite = $3,
       updated_at = now()
 WHERE id = $2
   AND user_id = $1
   AND deleted_at IS NULL
