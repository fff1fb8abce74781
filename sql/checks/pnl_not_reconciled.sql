-- P&L that reconciles, for a run on the simulated broker: the net P&L of its trades (closed
-- trades and the closed parts of open ones, each net of both legs' fees) plus what its open
-- positions would make closed at the last cycle's marks (net of the entry fees they carry)
-- equals the change in equity since the run started with the settings' sim.starting_cash.
-- With every position flat, that is: sum(trades.pnl) = equity - starting cash. The open
-- positions are the engine state's after the last cycle; the marks, equity and state are all
-- of that cycle. Returns a row when the two differ by more than a tenth of a cent: must be empty.
WITH started AS (
    SELECT CAST(config ->> '$.sim.starting_cash' AS DOUBLE) AS cash FROM runs WHERE run_id = $run_id
),
last_cycle AS (
    SELECT max(ts_event) AS ts, arg_max(equity, ts_event) AS equity FROM equity WHERE run_id = $run_id
),
held AS (
    SELECT unnest(from_json(
        value -> 'positions',
        '[{"symbol": "VARCHAR", "side": "VARCHAR", "qty": "DOUBLE", "entry": "DOUBLE", "entry_fees": "DOUBLE"}]'
    ), recursive := true)
    FROM engine_state
    WHERE run_id = $run_id AND key = 'engine'
),
open_positions AS (
    -- A position without a mark makes the P&L NULL, which the check reports. Entry fees are
    -- absent from the states of runs recorded before positions carried them.
    SELECT count(*) AS positions,
           CASE WHEN count(m.market_price) = count(*) THEN
               coalesce(sum((m.market_price - h.entry) * h.qty * CASE h.side WHEN 'buy' THEN 1 ELSE -1 END
                            - coalesce(h.entry_fees, 0)), 0)
           END AS pnl
    FROM held AS h
    LEFT JOIN positions AS m ON m.run_id = $run_id AND m.ts_event = (SELECT ts FROM last_cycle) AND m.symbol = h.symbol
),
closed AS (
    SELECT coalesce(sum(pnl), 0) AS pnl FROM trades WHERE run_id = $run_id
),
figures AS (
    -- Scalar subqueries: a run without its runs row or without cycles shows NULLs, and so a row.
    SELECT (SELECT cash FROM started) AS starting_cash,
           (SELECT equity FROM last_cycle) AS final_equity,
           (SELECT pnl FROM closed) AS trades_pnl,
           (SELECT positions FROM open_positions) AS open_positions,
           (SELECT pnl FROM open_positions) AS open_pnl
)
SELECT starting_cash, final_equity, final_equity - starting_cash AS equity_change, trades_pnl, open_positions,
       open_pnl, final_equity - starting_cash - trades_pnl - open_pnl AS difference
FROM figures
WHERE difference IS NULL OR abs(difference) > 0.001;
