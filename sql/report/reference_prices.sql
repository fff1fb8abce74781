-- Closes of the reference markets over a run's window, one per 15 minutes to keep the chart light.
SELECT symbol, time_bucket(INTERVAL 15 MINUTE, ts_event) AS ts_event, last(close ORDER BY ts_event) AS close
FROM bars
WHERE timeframe = '1Min' AND list_contains($symbols, symbol) AND ts_event BETWEEN $start AND $end
GROUP BY ALL
ORDER BY symbol, ts_event;
