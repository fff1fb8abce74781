-- The latest ingestion run of every feed.
SELECT feed, run_id, status, started_at, finished_at, rows_loaded, rows_quarantined, error, notes
FROM ingestion_runs
QUALIFY row_number() OVER (PARTITION BY feed ORDER BY started_at DESC) = 1
ORDER BY feed;
