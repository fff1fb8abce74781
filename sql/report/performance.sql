-- A run's closed-trade performance by strategy, regime and both, as in analytics_performance.
SELECT "grouping", strategy, regime_at_entry AS regime, symbol, trades, wins, win_rate, expectancy, profit_factor,
       avg_realized_r, total_pnl
FROM analytics_performance
WHERE run_id = $run_id
ORDER BY "grouping", total_pnl DESC;
