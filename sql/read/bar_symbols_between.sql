-- The markets with bars in a window: a file backtest's scratch warehouse holds only the file's.
SELECT DISTINCT symbol FROM bars WHERE ts_event BETWEEN $start AND $end ORDER BY symbol;
