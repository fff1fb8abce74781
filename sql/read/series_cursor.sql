-- The newest stored value of every market series: where each series resumes.
SELECT series, max(ts_event) AS last_event
FROM market_series
GROUP BY series;
