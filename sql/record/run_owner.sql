-- Who carries a run and why it ended as it did, after record/run wrote its row (NULL owner: a
-- trading session, continued by every minute's process).
UPDATE runs
SET owner_pid = $owner_pid, owner_host = $owner_host, heartbeat_at = $heartbeat_at, status_reason = $status_reason
WHERE run_id = $run_id;
