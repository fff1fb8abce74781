-- How many of a run's cycles had something to act on: a proposal, an order, an open position.
-- A replay that woke only for those would still run every cycle counted here.
SELECT avg(n_signals) AS signals_per_cycle,
       count(*) FILTER (WHERE n_proposals > 0) AS with_proposal,
       count(*) FILTER (WHERE n_orders > 0) AS with_order,
       count(*) FILTER (WHERE ts_event IN (SELECT ts_event FROM positions WHERE run_id = $run_id)) AS holding
FROM cycles
WHERE run_id = $run_id;
