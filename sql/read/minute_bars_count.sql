-- How many minute bars started in (after, until]: whether a window has history to replay.
SELECT count(*) FROM bars WHERE timeframe = '1Min' AND ts_event > $after AND ts_event <= $until;
