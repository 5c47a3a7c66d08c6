-- Sets each identity sequence to the largest id in its table, after rows came with ids, so
-- the next id is one past it; setval(max, true) cannot overflow even at the largest bigint.
SELECT setval(pg_get_serial_sequence('users', 'id'),
              coalesce(u.max_id, 1), u.max_id IS NOT NULL),
       setval(pg_get_serial_sequence('printers', 'id'),
              coalesce(pr.max_id, 1), pr.max_id IS NOT NULL),
       setval(pg_get_serial_sequence('prints', 'id'),
              coalesce(p.max_id, 1), p.max_id IS NOT NULL),
       setval(pg_get_serial_sequence('print_shot_feedbacks', 'id'),
              coalesce(f.max_id, 1), f.max_id IS NOT NULL)
  FROM (SELECT max(id) AS max_id FROM users) AS u,
       (SELECT max(id) AS max_id FROM printers) AS pr,
       (SELECT max(id) AS max_id FROM prints) AS p,
       (SELECT max(id) AS max_id FROM print_shot_feedbacks) AS f
