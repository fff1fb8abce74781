-- Days on which the broker accepted more entries than the daily limit allows: must be empty.
-- An entry counts once the broker accepted it (it has a broker order id and was not rejected):
-- orders HYDRA or the broker refused, and orders that never reached the broker, spend nothing.
-- Orders adopted from the broker (no proposal) were no decision of the run.
SELECT CAST(ts_event AS DATE) AS day, count(*) AS accepted_entries
FROM orders
WHERE run_id = $run_id
  AND intent = 'entry'
  AND proposal_id IS NOT NULL
  AND broker_order_id IS NOT NULL
  AND status <> 'rejected'
GROUP BY day
HAVING count(*) > $max_trades_per_day;
