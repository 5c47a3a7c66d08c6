-- The next batch of user $1's live prints that have frames and no answer on any of them, in
-- id order, for streaming: ids above $2, at most $3 of them.
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
   -- As a row, so the generic plan reads the (user_id, id) index from the last id sent.
   AND (p.user_id, p.id) > ($1, $2)
   AND s.frames > 0
   AND s.answered = 0
 ORDER BY p.user_id, p.id
 LIMIT $3
