-- All live prints of user $1 that have frames and no answer on any of them, in id order,
-- for streaming.
SELECT v.*
  FROM prints AS p
 CROSS JOIN LATERAL (
        SELECT count(*) AS frames,
               count(f.answer) AS answered
          FROM print_shot_feedbacks AS f
         WHERE f.print_id = p.id
       ) AS s
  JOIN print_rows AS v ON v.id = p.id
 WHERE p.user_id = $1
   AND p.deleted_at IS NULL
   AND s.frames > 0
   AND s.answered = 0
 ORDER BY p.id
