-- Why a run's proposals were refused, most frequent first.
SELECT reason, rejections FROM analytics_risk_rejections WHERE run_id = $run_id ORDER BY rejections DESC, reason;
