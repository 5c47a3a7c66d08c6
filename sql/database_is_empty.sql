-- True when the database holds no user and no print yet.
SELECT NOT EXISTS (SELECT 1 FROM users)
   AND NOT EXISTS (SELECT 1 FROM prints) AS empty
