SELECT value FROM engine_state WHERE run_id = $run_id AND key = $key;
