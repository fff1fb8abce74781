-- Approved entries whose size broke a hard limit at the moment of approval: must be empty.
-- The equity a decision saw is the one recorded in the same cycle.
SELECT d.proposal_id, d.notional, e.equity, d.notional / e.equity AS share_of_equity
FROM risk_decisions AS d
JOIN equity AS e USING (run_id, ts_event)
WHERE d.run_id = $run_id
  AND d.approved
  AND d.notional > $max_position * e.equity * (1 + 1e-9);
