-- Days on which more entries were approved than the daily limit allows: must be empty.
SELECT CAST(ts_event AS DATE) AS day, count(*) AS approvals
FROM risk_decisions
WHERE run_id = $run_id AND approved
GROUP BY day
HAVING count(*) > $max_trades_per_day;
