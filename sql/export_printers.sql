-- The printers of user $1 in id order.
SELECT pr.id,
       pr.name
  FROM printers AS pr
 WHERE pr.user_id = $1
 ORDER BY pr.id
