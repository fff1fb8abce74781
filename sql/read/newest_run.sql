-- The run started last: what a report or an export means by default.
SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1;
