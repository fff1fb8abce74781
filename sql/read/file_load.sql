-- What loading a file into its scratch warehouse came to: the newest ingestion run of its feed.
SELECT rows_loaded, rows_quarantined
FROM ingestion_runs
WHERE feed = $feed
ORDER BY finished_at DESC
LIMIT 1;
