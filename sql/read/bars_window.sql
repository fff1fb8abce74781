-- The bars a cycle decides on, as known at $as_of: bars of the cycle's $timeframe since
-- $bars_since and daily bars since $day_since.
SELECT *
FROM bars
WHERE ts_ingested <= $as_of
  AND ((timeframe = $timeframe AND ts_event >= $bars_since) OR (timeframe = '1Day' AND ts_event >= $day_since))
ORDER BY symbol, timeframe, ts_event;
