-- Bars of the watchlist at one timeframe that started in (after, until], oldest first: what a
-- simulated broker has not seen yet.
SELECT ts_event, symbol, open, high, low, close, volume
FROM bars
WHERE timeframe = $timeframe AND ts_event > $after AND ts_event <= $until AND list_contains($symbols, symbol)
ORDER BY ts_event, symbol;
