-- Every decision is a row. All trading tables are keyed by run_id (a paper session, a sim
-- run or a backtest run, described in runs) so analytics filter any run the same way and
-- backtest rows never mix with paper rows. ts_event is the cycle (decision) time;
-- ts_ingested is when the row was recorded.

CREATE TABLE runs (
    run_id        VARCHAR     NOT NULL,
    mode          VARCHAR     NOT NULL,   -- 'sim' | 'paper' | 'backtest'
    parent_run_id VARCHAR,                -- the walk-forward or sweep a run belongs to
    label         VARCHAR,
    profile       VARCHAR     NOT NULL,   -- risk profile
    config        JSON        NOT NULL,   -- effective configuration, secrets removed
    window_start  TIMESTAMPTZ,
    window_end    TIMESTAMPTZ,
    started_at    TIMESTAMPTZ NOT NULL,
    ended_at      TIMESTAMPTZ,
    status        VARCHAR     NOT NULL,   -- 'running' | 'completed' | 'failed'
    PRIMARY KEY (run_id)
);

CREATE TABLE cycles (
    run_id            VARCHAR     NOT NULL,
    ts_event          TIMESTAMPTZ NOT NULL,
    cycle_no          BIGINT      NOT NULL,
    regime            VARCHAR     NOT NULL,
    regime_confidence DOUBLE      NOT NULL,
    observation_only  BOOLEAN     NOT NULL,   -- the warm-up cycles: recorded, no orders
    trading_state     VARCHAR     NOT NULL,   -- 'ACTIVE' | 'COOLDOWN' | 'HALTED'
    n_signals         INTEGER     NOT NULL,
    n_proposals       INTEGER     NOT NULL,
    n_approved        INTEGER     NOT NULL,
    n_orders          INTEGER     NOT NULL,
    decision_ms       DOUBLE,
    ts_ingested       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event)
);

CREATE TABLE regimes (
    run_id        VARCHAR     NOT NULL,
    ts_event      TIMESTAMPTZ NOT NULL,
    regime        VARCHAR     NOT NULL,
    confidence    DOUBLE      NOT NULL,   -- posterior probability of the regime
    probabilities JSON        NOT NULL,   -- posterior of every named regime
    evaluated     BOOLEAN     NOT NULL,   -- re-evaluated this cycle (every N cycles)
    changed       BOOLEAN     NOT NULL,
    model_version VARCHAR     NOT NULL,
    ts_ingested   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event)
);

CREATE TABLE signals (
    run_id      VARCHAR     NOT NULL,
    signal_id   VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,   -- cycle time
    strategy    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    score       DOUBLE      NOT NULL,   -- -1 .. +1
    confidence  DOUBLE      NOT NULL,   -- 0 .. 1
    reliability DOUBLE      NOT NULL,   -- the strategy's measured hit rate weight
    weight      DOUBLE      NOT NULL,   -- reliability x age decay, as aggregated
    source      VARCHAR     NOT NULL,   -- the input that produced it
    signal_ts   TIMESTAMPTZ NOT NULL,   -- when the underlying fact happened
    half_life_s DOUBLE      NOT NULL,
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, signal_id)
);

-- A strategy that cannot decide says why (missing or stale input, regime not served).
CREATE TABLE strategy_abstentions (
    run_id      VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,
    strategy    VARCHAR     NOT NULL,
    reason      VARCHAR     NOT NULL,
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event, strategy)
);

CREATE TABLE proposals (
    run_id          VARCHAR     NOT NULL,
    proposal_id     VARCHAR     NOT NULL,
    ts_event        TIMESTAMPTZ NOT NULL,
    strategy        VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    side            VARCHAR     NOT NULL,   -- 'buy' | 'sell'
    entry           DOUBLE      NOT NULL,
    stop            DOUBLE      NOT NULL,
    target          DOUBLE      NOT NULL,
    reward_risk     DOUBLE      NOT NULL,
    horizon_s       DOUBLE      NOT NULL,
    confidence      DOUBLE      NOT NULL,
    strategy_weight DOUBLE      NOT NULL,
    expected_value  DOUBLE      NOT NULL,   -- confidence x reward_risk x strategy_weight
    rank            INTEGER     NOT NULL,
    regime          VARCHAR     NOT NULL,
    signal_ids      VARCHAR[]   NOT NULL,
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, proposal_id)
);

CREATE TABLE risk_decisions (
    run_id         VARCHAR     NOT NULL,
    proposal_id    VARCHAR     NOT NULL,
    ts_event       TIMESTAMPTZ NOT NULL,
    approved       BOOLEAN     NOT NULL,
    qty            DOUBLE      NOT NULL,   -- 0 when rejected
    notional       DOUBLE      NOT NULL,
    kelly_fraction DOUBLE,
    vol_scale      DOUBLE,
    reasons        VARCHAR[]   NOT NULL,   -- every limit that cut or rejected it
    ts_ingested    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, proposal_id)
);

CREATE TABLE orders (
    run_id          VARCHAR     NOT NULL,
    client_order_id VARCHAR     NOT NULL,   -- deterministic: (cycle time, strategy, symbol, leg)
    ts_event        TIMESTAMPTZ NOT NULL,   -- decision time
    proposal_id     VARCHAR,                -- NULL for exits
    trade_id        VARCHAR,
    strategy        VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    side            VARCHAR     NOT NULL,
    intent          VARCHAR     NOT NULL,   -- 'entry' | 'exit'
    order_type      VARCHAR     NOT NULL,   -- 'market' | 'limit' | 'stop_limit'
    time_in_force   VARCHAR     NOT NULL,
    qty             DOUBLE,
    notional        DOUBLE,
    limit_price     DOUBLE,
    stop_price      DOUBLE,
    decision_price  DOUBLE      NOT NULL,   -- the price the decision saw (slippage reference)
    broker_order_id VARCHAR,
    status          VARCHAR     NOT NULL,   -- 'refused' before sending, else the broker's status
    status_reason   VARCHAR,
    filled_qty      DOUBLE      NOT NULL,
    filled_avg_price DOUBLE,
    submitted_at    TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ,
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, client_order_id)
);

CREATE TABLE fills (
    run_id          VARCHAR     NOT NULL,
    fill_id         VARCHAR     NOT NULL,
    client_order_id VARCHAR     NOT NULL,
    ts_event        TIMESTAMPTZ NOT NULL,
    symbol          VARCHAR     NOT NULL,
    side            VARCHAR     NOT NULL,
    qty             DOUBLE      NOT NULL,
    price           DOUBLE      NOT NULL,
    fee             DOUBLE      NOT NULL,
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, fill_id)
);

-- Managed positions as round trips: one row per trade, updated when it closes.
CREATE TABLE trades (
    run_id          VARCHAR     NOT NULL,
    trade_id        VARCHAR     NOT NULL,
    strategy        VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    side            VARCHAR     NOT NULL,   -- 'long' | 'short'
    qty             DOUBLE      NOT NULL,
    entry_ts        TIMESTAMPTZ NOT NULL,
    entry_price     DOUBLE      NOT NULL,
    stop            DOUBLE      NOT NULL,
    target          DOUBLE      NOT NULL,
    trail_pct       DOUBLE,
    planned_rr      DOUBLE      NOT NULL,
    regime_at_entry VARCHAR     NOT NULL,
    exit_ts         TIMESTAMPTZ,
    exit_price      DOUBLE,
    exit_reason     VARCHAR,                -- 'stop' | 'target' | 'trail' | 'time' | 'signal' | 'reconcile'
    pnl             DOUBLE,
    fees            DOUBLE      NOT NULL,
    realized_r      DOUBLE,                 -- pnl in units of the initial risk
    status          VARCHAR     NOT NULL,   -- 'open' | 'closed'
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, trade_id)
);

CREATE TABLE positions (
    run_id          VARCHAR     NOT NULL,
    ts_event        TIMESTAMPTZ NOT NULL,
    symbol          VARCHAR     NOT NULL,
    qty             DOUBLE      NOT NULL,   -- signed: negative is short
    avg_entry_price DOUBLE      NOT NULL,
    market_price    DOUBLE      NOT NULL,
    market_value    DOUBLE      NOT NULL,
    unrealized_pnl  DOUBLE      NOT NULL,
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event, symbol)
);

CREATE TABLE equity (
    run_id          VARCHAR     NOT NULL,
    ts_event        TIMESTAMPTZ NOT NULL,
    cash            DOUBLE      NOT NULL,
    positions_value DOUBLE      NOT NULL,
    equity          DOUBLE      NOT NULL,
    gross_exposure  DOUBLE      NOT NULL,
    daily_pnl       DOUBLE      NOT NULL,
    drawdown        DOUBLE      NOT NULL,   -- fraction below the running peak
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event)
);

CREATE TABLE strategy_weights (
    run_id      VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,
    strategy    VARCHAR     NOT NULL,
    weight      DOUBLE      NOT NULL,
    win_rate    DOUBLE,
    avg_rr      DOUBLE,
    n_trades    INTEGER     NOT NULL,
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event, strategy)
);

CREATE TABLE kill_switch_events (
    run_id      VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,
    event       VARCHAR     NOT NULL,   -- 'HALTED' | 'RESUMED' | 'COOLDOWN_STARTED' | 'COOLDOWN_ENDED'
    reason      VARCHAR     NOT NULL,
    equity      DOUBLE,
    daily_pnl   DOUBLE,
    until_ts    TIMESTAMPTZ,
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event, event)
);

-- What a restarted trading flow needs to carry on (kill switch, cooldowns, trade counts,
-- weights, observation counter), as JSON per key.
CREATE TABLE engine_state (
    run_id     VARCHAR     NOT NULL,
    key        VARCHAR     NOT NULL,
    value      JSON        NOT NULL,
    ts_updated TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- Differences between the broker and the warehouse, and how each was resolved (broker wins).
CREATE TABLE reconciliations (
    run_id          VARCHAR     NOT NULL,
    ts_event        TIMESTAMPTZ NOT NULL,
    kind            VARCHAR     NOT NULL,   -- 'position_mismatch' | 'unrecorded_order' | 'order_status'
    subject         VARCHAR     NOT NULL,   -- symbol or client order id
    warehouse_value VARCHAR,
    broker_value    VARCHAR,
    resolution      VARCHAR     NOT NULL,
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, ts_event, kind, subject)
);
