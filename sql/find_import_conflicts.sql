-- What an import would collide with: users with an email of $1 (compared without regard to
-- case), and printers, prints and feedbacks with an id of $2, $3 and $4.
SELECT 'user' AS kind, u.email AS key
  FROM users AS u
 WHERE lower(u.email) = ANY (SELECT lower(e) FROM unnest($1::text[]) AS e)
 UNION ALL
SELECT 'printer', pr.id::text
  FROM printers AS pr
 WHERE pr.id = ANY ($2::bigint[])
 UNION ALL
SELECT 'print', p.id::text
  FROM prints AS p
 WHERE p.id = ANY ($3::bigint[])
 UNION ALL
SELECT 'feedback', f.id::text
  FROM print_shot_feedbacks AS f
 WHERE f.id = ANY ($4::bigint[])
