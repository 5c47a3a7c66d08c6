-- All live prints of user $1 in id order, for streaming; $2 names an optional filter:
-- cancelled, finished or need_alert_overwrite (NULL for none).
SELECT v.*
  FROM print_rows AS v
 WHERE v.user_id = $1
   AND v.deleted_at IS NULL
   AND (   $2::text IS NULL
        OR ($2 = 'cancelled' AND v.cancelled_at IS NOT NULL)
        OR ($2 = 'finished' AND v.finished_at IS NOT NULL)
        OR ($2 = 'need_alert_overwrite' AND v.alert_overwrite IS NULL))
 ORDER BY v.id
