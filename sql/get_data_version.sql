-- The data version of user $1: 0 when nothing of theirs has changed since it was created.
SELECT coalesce(
           (SELECT v.version FROM user_data_versions AS v WHERE v.user_id = $1),
           0
       ) AS version
