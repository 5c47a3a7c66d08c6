-- Counts one login attempt for the email $1 and the client address $2, each in its window
-- of $3 seconds, and returns per kind the attempts of the current window (this one
-- included) and the seconds left in it. Deletes up to 100 rows of other keys whose window
-- has ended. The upsert locks each row, so attempts racing each other get distinct counts.
WITH keys (kind, key) AS (
    VALUES ('address', $2),
           ('email', login_email_key($1))
),
ended AS (
    DELETE FROM login_attempts AS a
     USING (
           SELECT o.kind,
                  o.key
             FROM login_attempts AS o
            WHERE o.window_ends <= now()
              AND (o.kind, o.key) NOT IN (SELECT kind, key FROM keys)
            ORDER BY o.window_ends
            LIMIT 100
              FOR UPDATE SKIP LOCKED
           ) AS o
     WHERE a.kind = o.kind
       AND a.key = o.key
       AND a.window_ends <= now()
)
INSERT INTO login_attempts AS a (kind, key, attempts, window_ends)
SELECT k.kind, k.key, 1, now() + make_interval(secs => $3)
  FROM keys AS k
 ORDER BY k.kind
ON CONFLICT (kind, key) DO UPDATE
   SET attempts = CASE WHEN a.window_ends > now() THEN a.attempts + 1 ELSE 1 END,
       window_ends = CASE WHEN a.window_ends > now() THEN a.window_ends
                          ELSE excluded.window_ends END
RETURNING a.kind,
          a.attempts,
          a.window_ends,
          ceil(extract(epoch FROM a.window_ends - now()))::integer AS seconds_left
