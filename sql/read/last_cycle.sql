-- The newest decision time a run recorded (NULL before its first cycle).
SELECT max(ts_event) AS last_cycle FROM cycles WHERE run_id = $run_id;
