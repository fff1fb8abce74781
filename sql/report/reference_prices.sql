-- Closes of the given markets over a window, one per 15 minutes to keep the chart light. Intraday
-- bars of any timeframe; daily bars only for a symbol that has no intraday bars in the window.
WITH window_bars AS (
    SELECT symbol, timeframe, ts_event, close
    FROM bars
    WHERE list_contains($symbols, symbol) AND ts_event BETWEEN $start AND $end
),
intraday AS (
    SELECT DISTINCT symbol FROM window_bars WHERE timeframe <> '1Day'
)
SELECT symbol, time_bucket(INTERVAL 15 MINUTE, ts_event) AS ts_event, last(close ORDER BY ts_event) AS close
FROM window_bars
WHERE timeframe <> '1Day' OR symbol NOT IN (SELECT symbol FROM intraday)
GROUP BY ALL
ORDER BY symbol, ts_event;
