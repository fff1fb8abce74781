-- Bars per symbol and timeframe that a run over a window can read: bars of the cycle's
-- $timeframe from $bars_since and daily bars from $day_since (the window's start less each
-- lookback), up to $until.
SELECT symbol, timeframe, count(*) AS bars
FROM bars
WHERE ts_event <= $until
  AND ((timeframe = $timeframe AND ts_event >= $bars_since) OR (timeframe = '1Day' AND ts_event >= $day_since))
GROUP BY ALL
ORDER BY ALL;
