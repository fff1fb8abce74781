INSERT OR REPLACE INTO runs
    (run_id, mode, parent_run_id, label, profile, config, limits, window_start, window_end, started_at, ended_at, status)
VALUES
    ($run_id, $mode, $parent_run_id, $label, $profile, $config, $limits, $window_start, $window_end, $started_at, $ended_at, $status);
