-- One run at a glance: cycles, regimes, decisions, orders, fills, P&L and drawdown.
WITH c AS (
    SELECT count(*) AS cycles, min(ts_event) AS first_cycle, max(ts_event) AS last_cycle,
           sum(n_signals) AS signals, sum(n_proposals) AS proposals, sum(n_approved) AS approved
    FROM cycles WHERE run_id = $run_id
),
r AS (
    SELECT string_agg(DISTINCT regime, ', ' ORDER BY regime) AS regimes_seen,
           count(*) FILTER (WHERE changed AND evaluated) AS regime_changes
    FROM regimes WHERE run_id = $run_id
),
o AS (
    SELECT count(*) AS orders,
           count(*) FILTER (WHERE status = 'filled') AS filled,
           count(*) FILTER (WHERE status = 'refused') AS refused
    FROM orders WHERE run_id = $run_id
),
e AS (
    SELECT arg_max(equity, ts_event) AS final_equity, max(drawdown) AS max_drawdown
    FROM equity WHERE run_id = $run_id
),
t AS (
    SELECT count(*) FILTER (WHERE status = 'closed') AS closed_trades,
           coalesce(sum(pnl) FILTER (WHERE status = 'closed'), 0) AS realized_pnl
    FROM trades WHERE run_id = $run_id
),
k AS (
    SELECT count(*) AS kill_switch_events FROM kill_switch_events WHERE run_id = $run_id
)
SELECT * FROM c, r, o, e, t, k;
