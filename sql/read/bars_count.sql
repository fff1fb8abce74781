-- How many bars of one timeframe started in (after, until]: whether a window has history to replay.
SELECT count(*) FROM bars WHERE timeframe = $timeframe AND ts_event > $after AND ts_event <= $until;
