-- A run's equity with its running peak, drawdown and gross exposure (share of equity).
SELECT c.ts_event, c.equity, c.peak_equity, c.drawdown, e.gross_exposure / nullif(e.equity, 0) AS exposure
FROM analytics_equity_curve c JOIN equity e USING (run_id, ts_event)
WHERE c.run_id = $run_id
ORDER BY c.ts_event;
