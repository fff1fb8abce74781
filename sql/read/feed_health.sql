-- Each feed's last run and last successful run, as recorded by $as_of.
SELECT
    feed,
    max(finished_at) FILTER (WHERE status IN ('ok', 'degraded')) AS last_success,
    arg_max(status, finished_at) AS status,
    arg_max(error, finished_at) AS error
FROM ingestion_runs
WHERE finished_at <= $as_of
GROUP BY feed
ORDER BY feed;
