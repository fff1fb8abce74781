-- The newest stored funding print of every symbol of a venue: where each symbol's history resumes.
SELECT symbol, max(ts_event) AS last_event
FROM funding_rates
WHERE venue = $venue
GROUP BY symbol;
