-- A run's risk-adjusted figures.
SELECT * EXCLUDE (run_id) FROM analytics_run_ratios WHERE run_id = $run_id;
