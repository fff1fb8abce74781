-- Execution cost per strategy and side: fills and their mean slippage in bps (positive = worse).
SELECT strategy, side, count(*) AS fills, avg(slippage_bps) AS avg_slippage_bps
FROM analytics_slippage WHERE run_id = $run_id GROUP BY ALL ORDER BY strategy, side;
