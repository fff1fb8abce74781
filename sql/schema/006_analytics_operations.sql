-- Operational analytics: how close runs came to their limits, how long the kill switch held
-- them, whether signals called the market, and whether a backtest decides as paper trading
-- did. Like 004, views over every run, each carrying run_id.

-- The limits a run traded under (profile caps tightened by overrides), as RiskLimits JSON.
-- Stored apart from config because config holds the overrides, not the caps they tighten, and
-- a profile's caps may change between releases. Runs recorded before this column stay NULL.
ALTER TABLE runs ADD COLUMN limits JSON;

-- Exposure as a fraction of equity, against the run's max_total_exposure. The 1e-9 keeps a
-- book filled exactly to its limit (up to float rounding) from reading as a breach. Runs
-- without recorded limits have NULL utilisation and breach: unknown, not compliant.
CREATE VIEW analytics_exposure AS
WITH measured AS (
    SELECT e.run_id, e.ts_event, e.equity, e.gross_exposure,
           e.gross_exposure / nullif(e.equity, 0) AS exposure,
           CAST(r.limits ->> 'max_total_exposure' AS DOUBLE) AS max_total_exposure
    FROM equity e
    LEFT JOIN runs r USING (run_id)
)
SELECT run_id, ts_event, equity, gross_exposure, exposure, max_total_exposure,
       exposure / max_total_exposure AS utilisation,
       exposure > max_total_exposure + 1e-9 AS breach
FROM measured;

-- One row per halt or cooldown. A halt is lifted by RESUMED and a cooldown by COOLDOWN_ENDED
-- (core/risk.py), so each start takes the first event of its own closing kind after it;
-- ended_at and duration are NULL while it still holds. planned_until is the cooldown's
-- planned end (a halt has none: it lasts until the next trading day).
CREATE VIEW analytics_kill_switch_history AS
SELECT s.run_id,
       s.event AS kind,
       s.ts_event AS started_at,
       s.reason,
       s.equity,
       s.until_ts AS planned_until,
       min(e.ts_event) AS ended_at,
       ended_at - started_at AS duration
FROM kill_switch_events s
LEFT JOIN kill_switch_events e
    ON e.run_id = s.run_id
   AND e.ts_event > s.ts_event
   AND e.event = CASE s.event WHEN 'HALTED' THEN 'RESUMED' ELSE 'COOLDOWN_ENDED' END
WHERE s.event IN ('HALTED', 'COOLDOWN_STARTED')
GROUP BY s.run_id, s.event, s.ts_event, s.reason, s.equity, s.until_ts;

-- Whether each signal called the move of its symbol over the next 15, 60 and 240 minutes.
-- Prices are 1Min closes, a bar closing one minute after it opens (bars.ts_event): the start
-- price is the last close the signal could have seen, the end price the last close by the
-- horizon. A signal counts only once the bars reach its horizon and the end close is a later
-- bar than the start close: a horizon not yet over, or spent wholly with the market closed,
-- says nothing about the call. A hit is a score and a forward return of the same strict sign:
-- a score of 0 called nothing and a flat return paid nothing, so either is a signal but never
-- a hit.
CREATE VIEW analytics_signal_hit_rate AS
WITH closes AS (
    SELECT symbol, ts_event + INTERVAL 1 MINUTE AS closed_at, close
    FROM bars
    WHERE timeframe = '1Min'
),
reach AS (
    SELECT symbol, max(closed_at) AS last_closed_at FROM closes GROUP BY symbol
),
asked AS (
    SELECT s.run_id, s.strategy, s.symbol, s.score, s.ts_event, h.horizon_minutes,
           s.ts_event + to_minutes(h.horizon_minutes) AS horizon_at
    FROM signals s
    CROSS JOIN (VALUES (15), (60), (240)) h(horizon_minutes)
),
started AS (
    SELECT a.*, c.closed_at AS start_at, c.close AS start_close
    FROM asked a
    ASOF JOIN closes c ON c.symbol = a.symbol AND a.ts_event >= c.closed_at
),
ended AS (
    SELECT s.*, c.closed_at AS end_at, c.close AS end_close
    FROM started s
    ASOF JOIN closes c ON c.symbol = s.symbol AND s.horizon_at >= c.closed_at
),
counted AS (
    SELECT e.run_id, e.strategy, e.horizon_minutes, e.score * (e.end_close / e.start_close - 1) > 0 AS hit
    FROM ended e
    JOIN reach r ON r.symbol = e.symbol AND r.last_closed_at >= e.horizon_at
    WHERE e.end_at > e.start_at
)
SELECT run_id, strategy, horizon_minutes,
       count(*) AS signals,
       count(*) FILTER (WHERE hit) AS hits,
       hits / signals AS hit_rate
FROM counted
GROUP BY ALL;

-- Each paper run against each backtest run over the cycle times both covered. Client order ids
-- are deterministic from (cycle time, strategy, symbol, leg), so the same decision carries the
-- same id in both runs; it matches when the side and quantity agree too (orders sized by
-- notional, qty NULL, never match). match_rate divides by the larger count, so orders only
-- one run placed lower it from either side. pnl is of trades closed in the overlap, 0 when none.
CREATE VIEW analytics_backtest_vs_paper AS
WITH spans AS (
    SELECT c.run_id, r.mode, min(c.ts_event) AS first_cycle, max(c.ts_event) AS last_cycle
    FROM cycles c
    JOIN runs r USING (run_id)
    WHERE r.mode IN ('paper', 'backtest')
    GROUP BY c.run_id, r.mode
),
pairs AS (
    SELECT p.run_id AS paper_run_id, b.run_id AS backtest_run_id,
           greatest(p.first_cycle, b.first_cycle) AS overlap_start,
           least(p.last_cycle, b.last_cycle) AS overlap_end
    FROM spans p
    JOIN spans b ON p.mode = 'paper' AND b.mode = 'backtest'
    WHERE greatest(p.first_cycle, b.first_cycle) <= least(p.last_cycle, b.last_cycle)
),
-- One row per client order id either run decided in the overlap; the id is a run's primary
-- key, so two rows of an id are one from each run.
decided AS (
    SELECT pr.paper_run_id, pr.backtest_run_id, o.client_order_id,
           count(*) FILTER (WHERE o.run_id = pr.paper_run_id) AS in_paper,
           count(*) FILTER (WHERE o.run_id = pr.backtest_run_id) AS in_backtest,
           count(*) = 2 AND count(DISTINCT o.side) = 1 AND max(o.qty) - min(o.qty) <= 1e-9 AS matching
    FROM pairs pr
    JOIN orders o
        ON o.run_id IN (pr.paper_run_id, pr.backtest_run_id)
       AND o.ts_event BETWEEN pr.overlap_start AND pr.overlap_end
    GROUP BY pr.paper_run_id, pr.backtest_run_id, o.client_order_id
),
order_counts AS (
    SELECT paper_run_id, backtest_run_id,
           sum(in_paper) AS paper_orders,
           sum(in_backtest) AS backtest_orders,
           count(*) FILTER (WHERE matching) AS matching_orders
    FROM decided
    GROUP BY paper_run_id, backtest_run_id
),
closed_pnl AS (
    SELECT pr.paper_run_id, pr.backtest_run_id,
           sum(t.pnl) FILTER (WHERE t.run_id = pr.paper_run_id) AS paper_pnl,
           sum(t.pnl) FILTER (WHERE t.run_id = pr.backtest_run_id) AS backtest_pnl
    FROM pairs pr
    JOIN trades t
        ON t.run_id IN (pr.paper_run_id, pr.backtest_run_id)
       AND t.status = 'closed'
       AND t.exit_ts BETWEEN pr.overlap_start AND pr.overlap_end
    GROUP BY pr.paper_run_id, pr.backtest_run_id
)
SELECT pr.paper_run_id, pr.backtest_run_id, pr.overlap_start, pr.overlap_end,
       coalesce(o.paper_orders, 0) AS paper_orders,
       coalesce(o.backtest_orders, 0) AS backtest_orders,
       coalesce(o.matching_orders, 0) AS matching_orders,
       o.matching_orders / nullif(greatest(o.paper_orders, o.backtest_orders), 0) AS match_rate,
       coalesce(p.paper_pnl, 0) AS paper_pnl,
       coalesce(p.backtest_pnl, 0) AS backtest_pnl
FROM pairs pr
LEFT JOIN order_counts o USING (paper_run_id, backtest_run_id)
LEFT JOIN closed_pnl p USING (paper_run_id, backtest_run_id);
