-- The next batch of user $1's live prints in id order, for streaming: ids above $3, at most
-- $4 of them; $2 names an optional filter: cancelled, finished or need_alert_overwrite.
SELECT v.*
  FROM print_rows AS v
 WHERE v.user_id = $1
   AND v.deleted_at IS NULL
   -- As a row, so the generic plan reads the (user_id, id) index from the last id sent.
   AND (v.user_id, v.id) > ($1, $3)
   AND (   $2::text IS NULL
        OR ($2 = 'cancelled' AND v.cancelled_at IS NOT NULL)
        OR ($2 = 'finished' AND v.finished_at IS NOT NULL)
        OR ($2 = 'need_alert_overwrite' AND v.alert_overwrite IS NULL))
 ORDER BY v.user_id, v.id
 LIMIT $4
