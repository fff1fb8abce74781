-- A run whose owner is gone: failed, with why, ended when it was found so.
UPDATE runs SET status = 'failed', status_reason = $reason, ended_at = $found_at
WHERE run_id = $run_id AND status = 'running';
