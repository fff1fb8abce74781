SELECT ts_event, value
FROM market_series
WHERE series = $series AND ts_event >= $since
ORDER BY ts_event;
