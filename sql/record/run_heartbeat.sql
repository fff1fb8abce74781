-- The owner of a running run is alive at $at.
UPDATE runs SET heartbeat_at = $at WHERE run_id = $run_id AND status = 'running';
