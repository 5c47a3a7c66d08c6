-- Moves each identity sequence past the largest id in its table, after rows came with ids.
SELECT setval(pg_get_serial_sequence('users', 'id'),
              coalesce((SELECT max(id) FROM users), 0) + 1, false),
       setval(pg_get_serial_sequence('printers', 'id'),
              coalesce((SELECT max(id) FROM printers), 0) + 1, false),
       setval(pg_get_serial_sequence('prints', 'id'),
              coalesce((SELECT max(id) FROM prints), 0) + 1, false),
       setval(pg_get_serial_sequence('print_shot_feedbacks', 'id'),
              coalesce((SELECT max(id) FROM print_shot_feedbacks), 0) + 1, false)
