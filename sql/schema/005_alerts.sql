-- What a person was told, and whether the telling worked: every alert HYDRA raised (the kill
-- switch, a feed down past its tolerance, a reconciliation difference, a broker error).
CREATE TABLE alerts (
    ts_event     TIMESTAMPTZ NOT NULL,
    kind         VARCHAR     NOT NULL,   -- 'kill_switch' | 'feed_down' | 'reconciliation' | 'broker_error' | 'cycle_failed'
    subject      VARCHAR     NOT NULL,   -- the run, feed, symbol or order it is about
    message      VARCHAR     NOT NULL,
    run_id       VARCHAR,
    notified     BOOLEAN     NOT NULL,   -- a notification block accepted it
    notify_error VARCHAR,                -- why the block did not, when it did not
    ts_ingested  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, subject, ts_event)
);
