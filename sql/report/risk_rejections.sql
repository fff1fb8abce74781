-- Why a run's proposals were refused, by reason code, most frequent first.
SELECT code, rejections FROM analytics_risk_rejections WHERE run_id = $run_id ORDER BY rejections DESC, code;
