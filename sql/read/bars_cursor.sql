-- The newest stored bar of every symbol at one timeframe.
SELECT symbol, max(ts_event) AS last_bar
FROM bars
WHERE timeframe = $timeframe
GROUP BY symbol;
