-- A run's kill-switch and cooldown events.
SELECT ts_event, event, reason, equity, daily_pnl, until_ts FROM kill_switch_events WHERE run_id = $run_id ORDER BY ts_event;
