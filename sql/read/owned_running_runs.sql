-- Runs still `running` that one process owns: candidates for a dead owner.
SELECT run_id, owner_pid, owner_host, started_at, heartbeat_at FROM runs
WHERE status = 'running' AND owner_pid IS NOT NULL
ORDER BY started_at;
