-- Minute bars of $symbols since $since, as known at $as_of: a refit's training history. Only
-- the symbols it learns from are read, where a decision's window reads every table. Ordered
-- like bars_window.sql, so they split by symbol the same way.
SELECT *
FROM bars
WHERE ts_ingested <= $as_of AND timeframe = '1Min' AND ts_event >= $since AND list_contains($symbols, symbol)
ORDER BY symbol, timeframe, ts_event;
