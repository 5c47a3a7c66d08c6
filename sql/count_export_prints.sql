-- How many prints an export writes, soft-deleted ones included: the total of its progress.
SELECT count(*)
  FROM prints
