-- The regime each cycle of a run decided under.
SELECT ts_event, regime, confidence FROM regimes WHERE run_id = $run_id ORDER BY ts_event;
