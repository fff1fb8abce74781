-- What loading a user's files into their scratch warehouse came to: the newest ingestion run of
-- each file's feed (one feed a table).
SELECT feed, rows_loaded, rows_quarantined
FROM ingestion_runs
QUALIFY row_number() OVER (PARTITION BY feed ORDER BY finished_at DESC) = 1;
