-- The run's orders not yet in a final state: a restarted run follows them to the end.
SELECT client_order_id, ts_event, proposal_id, trade_id, strategy, symbol, side, intent, order_type,
       qty, limit_price, decision_price, reason, status, filled_qty, filled_avg_price
FROM orders
WHERE run_id = $run_id
  AND status NOT IN ('filled', 'canceled', 'expired', 'rejected', 'refused')
ORDER BY ts_event, client_order_id;
