-- A timeframe's bars of the symbols that have no daily bars, in time order per symbol: what their
-- daily bars are aggregated from when a source gives none (a file of minute bars).
SELECT symbol, ts_event, open, high, low, close, volume
FROM bars AS intraday
WHERE timeframe = $timeframe
  AND NOT EXISTS (SELECT 1 FROM bars AS daily WHERE daily.symbol = intraday.symbol AND daily.timeframe = '1Day')
ORDER BY symbol, ts_event;
