-- A round trip closes, in one exit fill or in parts: each part adds its P&L (net of its share
-- of the entry fees and of its exit fee), its exit fee and its share of the realized R (its R
-- weighted by the part of the entered quantity it closed). The last part fills in the exit
-- side and closes the row; the entry side (and regime) is kept.
UPDATE trades
SET exit_ts = CASE WHEN $closes_trade THEN $exit_ts ELSE exit_ts END,
    exit_price = CASE WHEN $closes_trade THEN $exit_price ELSE exit_price END,
    exit_reason = CASE WHEN $closes_trade THEN $exit_reason ELSE exit_reason END,
    pnl = coalesce(pnl, 0) + $pnl,
    fees = fees + $exit_fee,
    realized_r = coalesce(realized_r, 0) + $realized_r * $qty / qty,
    status = CASE WHEN $closes_trade THEN 'closed' ELSE status END,
    ts_ingested = $ts_ingested
WHERE run_id = $run_id AND trade_id = $trade_id;
