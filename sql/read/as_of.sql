-- Point-in-time read of one table: only what HYDRA had learned by $as_of, optionally
-- limited to events since $since.
SELECT *
FROM query_table($table)
WHERE ts_ingested <= $as_of
  AND ($since IS NULL OR ts_event >= $since)
ORDER BY ts_event;
