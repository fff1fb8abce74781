-- What kept each cycle, or a strategy in it, from trading, and when it will be ready
-- (core.readiness): the observation cycles, a regime short of sessions, the kill switch or a
-- cooldown, a strategy's abstention or a regime it does not trade in. `code` is a stable reason
-- code (core.types.ReasonCode, the README's list); `blocking` is false for what only has the
-- cycle trade on less than it should (a regime read on fewer sessions than its lookback).
-- `hydra status` shows the newest cycle's rows; a cycle without rows had nothing in its way.
CREATE TABLE cycle_readiness (
    run_id      VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,   -- the cycle's time
    subject     VARCHAR     NOT NULL,   -- 'observation' | 'regime' | 'risk' | a strategy
    code        VARCHAR     NOT NULL,
    detail      VARCHAR,
    blocking    BOOLEAN     NOT NULL,
    ready_at    TIMESTAMPTZ,            -- when it will be ready by itself, when that is a matter of time
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event, subject)
);
