-- A round trip closes: its exit side is filled in, its entry side (and regime) kept.
UPDATE trades
SET exit_ts = $exit_ts,
    exit_price = $exit_price,
    exit_reason = $exit_reason,
    pnl = $pnl,
    fees = fees + $fees,
    realized_r = $realized_r,
    status = 'closed',
    ts_ingested = $ts_ingested
WHERE run_id = $run_id AND trade_id = $trade_id;
