-- The newest cycle of $run_id and what kept it, or a strategy in it, from trading
-- (cycle_readiness): one row per item, the general ones (observation, regime, risk) first; a
-- single row with NULL subject when nothing did; no row before the run's first cycle.
SELECT c.ts_event, c.cycle_no, c.regime, r.subject, r.code, r.detail, r.blocking, r.ready_at
FROM (SELECT ts_event, cycle_no, regime FROM cycles WHERE run_id = $run_id ORDER BY ts_event DESC LIMIT 1) AS c
LEFT JOIN cycle_readiness AS r ON r.run_id = $run_id AND r.ts_event = c.ts_event
ORDER BY CASE r.subject WHEN 'observation' THEN 0 WHEN 'regime' THEN 1 WHEN 'risk' THEN 2 ELSE 3 END, r.subject;
