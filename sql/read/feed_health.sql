-- Each feed's health after each of its runs finished by $last, from the newest run finished by
-- $first on: its last success, and the status and error of that run. A cycle at a moment in
-- [$first, $last] knows of a feed what the newest row finished by then says, so one read
-- serves one live cycle ($first = $last) and a whole replay chunk alike. Runs finished at the
-- same moment are ordered by run id, so the newest of them is always the same one.
WITH runs AS (
    SELECT
        feed,
        run_id,
        finished_at,
        status,
        error,
        max(finished_at) FILTER (WHERE status IN ('ok', 'degraded')) OVER (
            PARTITION BY feed ORDER BY finished_at, run_id ROWS UNBOUNDED PRECEDING
        ) AS last_success,
        max(finished_at) FILTER (WHERE finished_at <= $first) OVER (PARTITION BY feed) AS newest_by_first
    FROM ingestion_runs
    WHERE finished_at <= $last
)
SELECT feed, finished_at, last_success, status, error
FROM runs
WHERE newest_by_first IS NULL OR finished_at >= newest_by_first
ORDER BY feed, finished_at, run_id;
