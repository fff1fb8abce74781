-- The runs of one sweep or walk-forward side by side: its settings (the run's label), what it
-- earned and what it risked. Ordered best first by Sharpe, then P&L.
SELECT r.run_id,
       r.label AS settings,
       r.window_start,
       r.window_end,
       coalesce(p.trades, 0) AS trades,
       p.win_rate,
       coalesce(p.total_pnl, 0) AS total_pnl,
       e.initial_equity,
       e.final_equity,
       k.max_drawdown,
       q.sharpe,
       q.sortino
FROM runs r
LEFT JOIN (
    SELECT run_id, sum(trades) AS trades, sum(wins) / nullif(sum(trades), 0) AS win_rate, sum(total_pnl) AS total_pnl
    FROM analytics_strategy_performance GROUP BY run_id
) p USING (run_id)
LEFT JOIN (
    SELECT run_id, arg_min(equity, ts_event) AS initial_equity, arg_max(equity, ts_event) AS final_equity
    FROM equity GROUP BY run_id
) e USING (run_id)
LEFT JOIN analytics_run_risk k USING (run_id)
LEFT JOIN analytics_run_ratios q USING (run_id)
WHERE r.parent_run_id = $parent_run_id
ORDER BY q.sharpe DESC NULLS LAST, total_pnl DESC, r.run_id;
