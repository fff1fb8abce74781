-- The last margins snapshot HYDRA took: what a new snapshot is diffed against.
SELECT *
FROM margin_rates
QUALIFY ts_event = max(ts_event) OVER (PARTITION BY exchange, clearing_code);
