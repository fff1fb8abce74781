-- The closes a run keeps with it (sql/schema/008_run_prices.sql): its report draws these first.
SELECT symbol, ts_event, close FROM run_prices WHERE run_id = $run_id ORDER BY symbol, ts_event;
