-- One run's rows of a trading table ({table} is a checked, quoted identifier).
SELECT * FROM {table} WHERE run_id = $run_id;
