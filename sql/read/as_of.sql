-- Point-in-time read of one table: only what HYDRA had learned by $as_of, optionally
-- limited to events since $since. Ordered totally (time, then every column) so that a
-- replay's history, filtered to a moment, equals a fresh read at that moment row for row.
SELECT *
FROM query_table($table)
WHERE ts_ingested <= $as_of
  AND ($since IS NULL OR ts_event >= $since)
ORDER BY ts_event, COLUMNS(*);
