-- Trades one strategy held on one symbol and side at the same time: a view is entered once
-- (StrategyContext.entered), so this must be empty. A trade still open overlaps every later one.
SELECT earlier.strategy, earlier.symbol, earlier.side, earlier.trade_id, later.trade_id AS later_trade_id
FROM trades AS earlier
JOIN trades AS later
  ON later.run_id = earlier.run_id
 AND later.strategy = earlier.strategy
 AND later.symbol = earlier.symbol
 AND later.side = earlier.side
 AND later.trade_id <> earlier.trade_id
 AND later.entry_ts >= earlier.entry_ts
 AND (earlier.exit_ts IS NULL OR later.entry_ts < earlier.exit_ts)
WHERE earlier.run_id = $run_id
ORDER BY earlier.entry_ts, later.entry_ts;
