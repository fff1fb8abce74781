-- The newest stored open-interest period of every symbol of a venue: where each symbol's
-- history resumes (the live figures, period 'spot', are read afresh every run).
SELECT symbol, max(ts_event) AS last_event
FROM open_interest
WHERE venue = $venue AND period = $period
GROUP BY symbol;
