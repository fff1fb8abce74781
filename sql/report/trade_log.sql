-- One run's round trips with their orders and fills: the session's JSON trade log.
SELECT t.trade_id, t.strategy, t.symbol, t.side, t.qty, t.entry_ts, t.entry_price, t.stop, t.target,
       t.trail_pct, t.planned_rr, t.regime_at_entry, t.exit_ts, t.exit_price, t.exit_reason, t.pnl, t.fees,
       t.realized_r, t.status,
       (SELECT list({'client_order_id': o.client_order_id, 'intent': o.intent, 'side': o.side, 'qty': o.qty,
                     'status': o.status, 'filled_qty': o.filled_qty, 'filled_avg_price': o.filled_avg_price,
                     'decided_at': o.ts_event, 'reason': o.reason} ORDER BY o.ts_event)
        FROM orders o WHERE o.run_id = t.run_id AND (o.trade_id = t.trade_id OR o.client_order_id = t.trade_id))
           AS orders,
       (SELECT list({'fill_id': f.fill_id, 'ts': f.ts_event, 'side': f.side, 'qty': f.qty, 'price': f.price,
                     'fee': f.fee} ORDER BY f.ts_event)
        FROM fills f JOIN orders o ON o.run_id = f.run_id AND o.client_order_id = f.client_order_id
        WHERE f.run_id = t.run_id AND (o.trade_id = t.trade_id OR o.client_order_id = t.trade_id)) AS fills
FROM trades t
WHERE t.run_id = $run_id
ORDER BY t.entry_ts, t.trade_id;
