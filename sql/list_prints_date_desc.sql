-- A page of user $1's live prints, latest start first, ties by id, never-started prints last:
-- $3 rows skipped, at most $4 returned (NULL for all); $2 as in list_prints.
SELECT v.*
  FROM (
        SELECT p.id
          FROM prints AS p
         WHERE p.user_id = $1
           AND p.deleted_at IS NULL
           AND (   $2::text IS NULL
                OR ($2 = 'cancelled' AND p.cancelled_at IS NOT NULL)
                OR ($2 = 'finished' AND p.finished_at IS NOT NULL)
                OR ($2 = 'need_alert_overwrite' AND p.alert_overwrite IS NULL))
         ORDER BY p.started_at DESC NULLS LAST, p.id DESC
        OFFSET $3
         LIMIT $4
       ) AS page
  JOIN print_rows AS v ON v.id = page.id
 ORDER BY v.started_at DESC NULLS LAST, v.id DESC
