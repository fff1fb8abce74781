-- The newest minute bar stored: in sim mode the market's clock is what ingestion has loaded.
SELECT max(ts_event) AS latest FROM bars WHERE timeframe = '1Min';
