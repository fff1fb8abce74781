-- A run's last decision at or before a moment (NULL: none).
SELECT max(ts_event) FROM cycles WHERE run_id = $run_id AND ts_event <= $until;
