-- A page of user $1's live prints that have frames and no answer on any of them, earliest
-- start first, ties by id, never-started prints last: $2 rows skipped, at most $3 returned
-- (NULL for all).
SELECT v.*
  FROM (
        SELECT p.id
          FROM prints AS p
         CROSS JOIN LATERAL (
                SELECT count(*) AS frames,
                       count(f.answer) AS answered
                  FROM print_shot_feedbacks AS f
                 WHERE f.print_id = p.id
               ) AS s
         WHERE p.user_id = $1
           AND p.deleted_at IS NULL
           AND s.frames > 0
           AND s.answered = 0
         ORDER BY p.started_at ASC NULLS LAST, p.id ASC
        OFFSET $2
         LIMIT $3
       ) AS page
  JOIN print_rows AS v ON v.id = page.id
 ORDER BY v.started_at ASC NULLS LAST, v.id ASC
