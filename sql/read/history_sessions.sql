-- How many sessions $symbol has bars of $timeframe for since $since (the start of the window a
-- cycle reads): the New York dates its bars fall on, so a daily bar stamped at midnight New York
-- and a session's minute bars each count their session once.
SELECT count(DISTINCT CAST(timezone('America/New_York', ts_event) AS DATE)) AS sessions
FROM bars
WHERE symbol = $symbol AND timeframe = $timeframe AND ts_event >= $since;
