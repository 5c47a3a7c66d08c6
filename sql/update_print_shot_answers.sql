-- Sets the answers $4 on the frames $3 of print $2 of user $1, returning the ids it matched.
-- answered_at moves to now when an answer changes, is kept when the same answer is sent
-- again, and is cleared with the answer.
UPDATE print_shot_feedbacks AS f
   SET answer = c.answer,
       answered_at = CASE
                         WHEN c.answer IS NULL THEN NULL
                         WHEN c.answer = f.answer THEN coalesce(f.answered_at, now())
                         ELSE now()
                     END
  FROM unnest($3::bigint[], $4::text[]) AS c (id, answer),
       prints AS p
 WHERE f.id = c.id
   AND f.print_id = $2
   AND p.id = f.print_id
   AND p.user_id = $1
RETURNING f.id
