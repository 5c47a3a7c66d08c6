-- Creates prints from parallel arrays, one per column in the order below, ids kept.
INSERT INTO prints (
       id, user_id, printer_id, filename, started_at, finished_at, cancelled_at,
       uploaded_at, alerted_at, alert_acknowledged_at, alert_muted_at, paused_at,
       video_url, tagged_video_url, poster_url, prediction_json_url, alert_overwrite,
       deleted_at)
SELECT *
  FROM unnest(
       $1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[],
       $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[],
       $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[],
       $15::text[], $16::text[], $17::text[], $18::timestamptz[])
