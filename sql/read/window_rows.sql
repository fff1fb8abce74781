-- How many rows of one table a run over a window can read: dated from $since (the window's start
-- less the table's lookback) to $until, or dated later but published by $until (a calendar's
-- coming events). Whether there is anything at all, not what was known when.
SELECT count(*) FROM query_table($table) WHERE ts_event >= $since AND (ts_event <= $until OR ts_ingested <= $until);
