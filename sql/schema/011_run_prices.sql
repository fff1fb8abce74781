-- The prices a run's report draws, kept with the run when they are not among this warehouse's
-- bars: a backtest of a user's bar file replays in a scratch warehouse of its own, which may be
-- removed (or reused for another window) later, so the run takes its markets' closes with it.
-- One close per symbol and 15 minutes, as sql/report/reference_prices.sql buckets them.
CREATE TABLE run_prices (
    run_id      VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,
    close       DOUBLE      NOT NULL,
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, symbol, ts_event)
);
