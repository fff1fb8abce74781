-- Analytics over recorded runs, as views so they always reflect the tables and cost nothing
-- to keep current. Every view carries run_id and covers all runs: a reader filters
-- WHERE run_id = ... and rows of different runs never mix (every window and group is by run).

-- Closed round trips with the per-trade split the metrics need. pnl is as recorded on close,
-- net of fees. A trade with pnl = 0 is neither a win nor a loss: it counts in trades (and so
-- lowers win_rate) but in neither average nor in the profit factor.
CREATE VIEW analytics_closed_trades AS
SELECT run_id, trade_id, strategy, symbol, regime_at_entry, side, entry_ts, exit_ts, exit_reason,
       pnl, fees, realized_r, planned_rr,
       CASE WHEN pnl > 0 THEN pnl END AS win_pnl,
       CASE WHEN pnl < 0 THEN pnl END AS loss_pnl
FROM trades
WHERE status = 'closed';

-- Every grouping of trade performance in one pass, so each metric is written once: the four
-- per-grouping views below are projections of this one. GROUPING SETS rather than a table
-- macro because the groupings differ by column, which a macro cannot take as a parameter, and
-- the result stays an ordinary view the catalog lists and any client can query.
-- `grouping` names the set; a key outside the set is NULL in that row.
CREATE VIEW analytics_performance AS
SELECT CASE grouping(strategy, regime_at_entry, symbol)
           WHEN 3 THEN 'strategy'          -- regime and symbol rolled up (bits 2 and 1)
           WHEN 5 THEN 'regime'            -- strategy and symbol rolled up (bits 4 and 1)
           WHEN 1 THEN 'strategy_regime'   -- symbol rolled up
           WHEN 6 THEN 'symbol'            -- strategy and regime rolled up
       END AS "grouping",
       run_id, strategy, regime_at_entry, symbol,
       count(*) AS trades,
       count(win_pnl) AS wins,
       count(win_pnl) / count(*) AS win_rate,
       avg(win_pnl) AS avg_win,
       avg(loss_pnl) AS avg_loss,                       -- negative: a loss is a negative pnl
       avg(realized_r) AS avg_realized_r,               -- realized reward in units of initial risk
       avg(planned_rr) AS avg_planned_rr,
       avg(pnl) AS expectancy,                          -- mean pnl per closed trade
       -- Gross loss is NULL when nothing lost, so the ratio is NULL rather than infinite.
       coalesce(sum(win_pnl), 0) / -sum(loss_pnl) AS profit_factor,
       sum(pnl) AS total_pnl
FROM analytics_closed_trades
GROUP BY GROUPING SETS (
    (run_id, strategy),
    (run_id, regime_at_entry),
    (run_id, strategy, regime_at_entry),
    (run_id, symbol)
);

CREATE VIEW analytics_strategy_performance AS
SELECT * EXCLUDE ("grouping", regime_at_entry, symbol)
FROM analytics_performance WHERE "grouping" = 'strategy';

CREATE VIEW analytics_regime_performance AS
SELECT * EXCLUDE ("grouping", strategy, symbol)
FROM analytics_performance WHERE "grouping" = 'regime';

CREATE VIEW analytics_strategy_regime_performance AS
SELECT * EXCLUDE ("grouping", symbol)
FROM analytics_performance WHERE "grouping" = 'strategy_regime';

CREATE VIEW analytics_asset_performance AS
SELECT * EXCLUDE ("grouping", strategy, regime_at_entry)
FROM analytics_performance WHERE "grouping" = 'symbol';

-- Recomputed from equity rather than read from equity.drawdown, so the curve does not depend
-- on how the engine tracked its peak (a restarted run starts a new in-memory peak).
CREATE VIEW analytics_equity_curve AS
WITH peaked AS (
    SELECT run_id, ts_event, equity,
           max(equity) OVER (PARTITION BY run_id ORDER BY ts_event ROWS UNBOUNDED PRECEDING) AS peak_equity
    FROM equity
)
SELECT run_id, ts_event, equity, peak_equity,
       1 - equity / nullif(peak_equity, 0) AS drawdown   -- fraction below the running peak
FROM peaked;

CREATE VIEW analytics_run_risk AS
SELECT run_id, max(peak_equity) AS peak_equity, max(drawdown) AS max_drawdown
FROM analytics_equity_curve
GROUP BY run_id;

-- Days are UTC calendar days, whatever the session's TimeZone setting (a plain cast of a
-- TIMESTAMPTZ to DATE would use it). A day's return is against the last equity of the
-- previous day that has any equity point, so days without cycles (weekends for equities)
-- do not yield zero returns; the run's first day has no return.
CREATE VIEW analytics_daily_returns AS
WITH closes AS (
    SELECT run_id, timezone('UTC', ts_event)::DATE AS day,
           arg_max(equity, ts_event) AS close_equity,
           count(*) AS points
    FROM equity
    GROUP BY ALL
)
SELECT run_id, day, close_equity, points,
       close_equity / lag(close_equity) OVER (PARTITION BY run_id ORDER BY day) - 1 AS daily_return
FROM closes;

-- Per-run ratios over the daily returns, annualised with 252 trading days and a zero
-- risk-free rate:
--   sharpe  = mean(r) / stddev_samp(r) x sqrt(252)
--   sortino = mean(r) / downside deviation x sqrt(252), the downside deviation being
--             sqrt(sum(min(r, 0)^2) / n) over all n returns (target 0): days above the target
--             count as zero shortfall rather than being dropped
--   annualised return = (last close / first close)^(252 / n) - 1, compounding the n daily
--             returns from the first day's close to the last day's close
--   calmar  = annualised return / max_drawdown (of every equity point, not only closes)
-- Each ratio is NULL when its denominator is zero or undefined (fewer than two returns for
-- the standard deviation, no losing day for sortino, no drawdown for calmar).
CREATE VIEW analytics_run_ratios AS
WITH per_run AS (
    SELECT run_id,
           count(*) AS days,
           count(daily_return) AS returns,
           avg(daily_return) AS mean_daily_return,
           stddev_samp(daily_return) AS stdev_daily_return,
           -- The filter because least() skips NULL: the first day would count as a zero return.
           sqrt(avg(least(daily_return, 0) ^ 2) FILTER (WHERE daily_return IS NOT NULL)) AS downside_deviation,
           arg_max(close_equity, day) / arg_min(close_equity, day) AS growth
    FROM analytics_daily_returns
    GROUP BY run_id
),
annual AS (
    SELECT *, CASE WHEN returns > 0 THEN growth ^ (252 / returns) - 1 END AS annualised_return
    FROM per_run
)
SELECT a.run_id, a.days, a.returns, a.mean_daily_return, a.stdev_daily_return, a.downside_deviation,
       a.mean_daily_return / nullif(a.stdev_daily_return, 0) * sqrt(252) AS sharpe,
       a.mean_daily_return / nullif(a.downside_deviation, 0) * sqrt(252) AS sortino,
       a.annualised_return,
       r.max_drawdown,
       a.annualised_return / nullif(r.max_drawdown, 0) AS calmar
FROM annual a
JOIN analytics_run_risk r USING (run_id);

-- One count per reason of each rejected proposal: a rejection citing two limits counts for
-- both, so the counts add up to more than the rejections.
CREATE VIEW analytics_risk_rejections AS
SELECT run_id, reason, count(*) AS rejections
FROM (SELECT run_id, unnest(reasons) AS reason FROM risk_decisions WHERE NOT approved)
GROUP BY ALL;

-- Per fill against the price the decision saw, in basis points, positive when the fill was
-- worse for us: a buy that paid more or a sell that received less.
CREATE VIEW analytics_slippage AS
SELECT f.run_id, f.fill_id, f.client_order_id, f.ts_event, o.strategy, o.symbol, o.side, o.intent, f.qty,
       o.decision_price, f.price AS fill_price,
       (f.price - o.decision_price) / o.decision_price * 1e4
           * CASE o.side WHEN 'buy' THEN 1 WHEN 'sell' THEN -1 END AS slippage_bps
FROM fills f
JOIN orders o USING (run_id, client_order_id);
