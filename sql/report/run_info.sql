-- What a run was: its mode, label, profile, window and status.
SELECT run_id, mode, label, profile, window_start, window_end, started_at, ended_at, status,
       (SELECT min(ts_event) FROM cycles WHERE run_id = $run_id) AS first_cycle,
       (SELECT max(ts_event) FROM cycles WHERE run_id = $run_id) AS last_cycle
FROM runs WHERE run_id = $run_id;
