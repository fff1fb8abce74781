-- The bars a cycle decides on, as known at $as_of: minute bars since $minute_since and
-- daily bars since $day_since.
SELECT *
FROM bars
WHERE ts_ingested <= $as_of
  AND ((timeframe = '1Min' AND ts_event >= $minute_since) OR (timeframe = '1Day' AND ts_event >= $day_since))
ORDER BY symbol, timeframe, ts_event;
