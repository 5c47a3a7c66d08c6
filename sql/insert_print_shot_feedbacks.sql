-- Creates print shot feedbacks with the ids $1, prints $2, image URLs $3, answers $4 and
-- answer times $5, ids kept.
INSERT INTO print_shot_feedbacks (id, print_id, image_url, answer, answered_at)
SELECT *
  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
