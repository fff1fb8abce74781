-- The run started last, a failed one only when no other is left: what a report or an export
-- means by default (a run that died holds no results worth the default).
SELECT run_id FROM runs ORDER BY status = 'failed', started_at DESC, run_id DESC LIMIT 1;
