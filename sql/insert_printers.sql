-- Creates printers with the ids $1, owners $2 and names $3, ids kept.
INSERT INTO printers (id, user_id, name)
SELECT r.id, r.user_id, r.name
  FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS r (id, user_id, name)
