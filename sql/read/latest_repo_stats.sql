-- The newest stored counts of every repository: what a 304 to their ETag observes again.
SELECT repo, stars, forks, open_issues, watchers
FROM repo_stats
QUALIFY row_number() OVER (PARTITION BY repo ORDER BY ts_event DESC) = 1;
