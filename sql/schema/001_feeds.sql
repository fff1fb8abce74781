-- Facts from external feeds. Every row carries ts_event (when it happened, UTC) and
-- ts_ingested (when HYDRA learned it): snapshots and replays filter on ts_ingested so a
-- backtest sees only what was known at the time. Primary keys are the natural keys that
-- idempotent upserts replace on.

CREATE TABLE bars (
    symbol       VARCHAR     NOT NULL,   -- order form: 'BTC/USD', 'SPY'
    timeframe    VARCHAR     NOT NULL,   -- '1Min' | '1Day'
    ts_event     TIMESTAMPTZ NOT NULL,   -- bar open time
    open         DOUBLE      NOT NULL,
    high         DOUBLE      NOT NULL,
    low          DOUBLE      NOT NULL,
    close        DOUBLE      NOT NULL,
    volume       DOUBLE      NOT NULL,
    trade_count  BIGINT,
    vwap         DOUBLE,
    source       VARCHAR     NOT NULL,   -- 'alpaca-iex', 'alpaca-crypto', 'sim', 'file'
    ts_ingested  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts_event)
);

CREATE TABLE funding_rates (
    venue        VARCHAR     NOT NULL,   -- 'binance-usdm', 'sim'
    symbol       VARCHAR     NOT NULL,   -- venue form: 'BTCUSDT'
    ts_event     TIMESTAMPTZ NOT NULL,   -- funding time
    funding_rate DOUBLE      NOT NULL,   -- per funding interval, as a fraction (0.0001 = 0.01%)
    mark_price   DOUBLE,
    ts_ingested  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, symbol, ts_event)
);

CREATE TABLE premium_index (
    venue                  VARCHAR     NOT NULL,
    symbol                 VARCHAR     NOT NULL,
    ts_event               TIMESTAMPTZ NOT NULL,
    mark_price             DOUBLE      NOT NULL,
    index_price            DOUBLE,
    estimated_settle_price DOUBLE,
    last_funding_rate      DOUBLE,
    next_funding_time      TIMESTAMPTZ,
    interest_rate          DOUBLE,
    ts_ingested            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, symbol, ts_event)
);

CREATE TABLE open_interest (
    venue               VARCHAR     NOT NULL,
    symbol              VARCHAR     NOT NULL,
    period              VARCHAR     NOT NULL,   -- 'spot' for the live figure, else '5m'..'1d'
    ts_event            TIMESTAMPTZ NOT NULL,
    open_interest       DOUBLE      NOT NULL,   -- contracts (base asset)
    open_interest_value DOUBLE,                 -- quote currency, where the venue gives it
    ts_ingested         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, symbol, period, ts_event)
);

-- Current margins as published; a change row in margin_notices is derived by diffing
-- consecutive snapshots, so the raw snapshots are kept.
CREATE TABLE margin_rates (
    exchange         VARCHAR     NOT NULL,
    clearing_code    VARCHAR     NOT NULL,   -- 'GC', 'SI'
    name             VARCHAR,
    start_period     VARCHAR     NOT NULL,
    end_period       VARCHAR,
    maintenance_rate DOUBLE      NOT NULL,
    unit             VARCHAR     NOT NULL,   -- 'USD' | 'PCT_NOTIONAL'
    currency         VARCHAR,
    ts_event         TIMESTAMPTZ NOT NULL,   -- when the snapshot was taken
    ts_ingested      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (exchange, clearing_code, start_period, ts_event)
);

CREATE TABLE margin_notices (
    notice_id       VARCHAR     NOT NULL,   -- 'Chadv26-123' or 'diff:<code>:<ts>' for snapshot diffs
    product         VARCHAR     NOT NULL,   -- 'GC', 'SI'
    rate_type       VARCHAR     NOT NULL,   -- 'OUTRIGHT', 'SPEC', 'HEDGE', ...
    tier            VARCHAR     NOT NULL,
    title           VARCHAR,
    notice_date     DATE,
    effective_date  DATE        NOT NULL,
    ts_event        TIMESTAMPTZ NOT NULL,   -- notice time (announcement moves the market)
    unit            VARCHAR     NOT NULL,   -- 'USD' | 'PCT_NOTIONAL'
    old_initial     DOUBLE,
    new_initial     DOUBLE,
    old_maintenance DOUBLE,
    new_maintenance DOUBLE,
    change_pct      DOUBLE,                 -- percent: 100 x (new - old) / old of maintenance
    source          VARCHAR     NOT NULL,   -- 'cme-advisory', 'cme-margins-json', 'sim'
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (notice_id, product, rate_type, tier)
);

CREATE TABLE metal_premiums (
    ts_event          TIMESTAMPTZ NOT NULL,   -- fixing time
    session           VARCHAR     NOT NULL,   -- 'AM' | 'PM'
    sge_cny_per_gram  DOUBLE      NOT NULL,
    usd_cny           DOUBLE      NOT NULL,
    sge_usd_per_oz    DOUBLE      NOT NULL,
    ref_usd_per_oz    DOUBLE      NOT NULL,   -- LBMA PM (or the configured reference)
    premium_usd_per_oz DOUBLE     NOT NULL,
    premium_pct       DOUBLE      NOT NULL,
    source            VARCHAR     NOT NULL,
    ts_ingested       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ts_event, session)
);

CREATE TABLE economic_events (
    source      VARCHAR     NOT NULL,   -- 'bls', 'fomc', 'fred', 'sim'
    event_type  VARCHAR     NOT NULL,   -- 'NFP' | 'CPI' | 'FOMC' | other release names
    ts_event    TIMESTAMPTZ NOT NULL,   -- scheduled time (UTC)
    title       VARCHAR     NOT NULL,
    importance  SMALLINT    NOT NULL,   -- 1 low .. 3 market-moving
    all_day     BOOLEAN     NOT NULL,   -- time of day unknown
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, event_type, ts_event)
);

CREATE TABLE github_releases (
    repo         VARCHAR     NOT NULL,   -- 'owner/name'
    release_id   BIGINT      NOT NULL,
    tag_name     VARCHAR     NOT NULL,
    name         VARCHAR,
    draft        BOOLEAN     NOT NULL,
    prerelease   BOOLEAN     NOT NULL,
    created_at   TIMESTAMPTZ,
    ts_event     TIMESTAMPTZ NOT NULL,   -- published_at
    html_url     VARCHAR,
    ts_ingested  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo, release_id)
);

CREATE TABLE repo_stats (
    repo        VARCHAR     NOT NULL,
    ts_event    TIMESTAMPTZ NOT NULL,   -- when observed
    stars       BIGINT      NOT NULL,
    forks       BIGINT      NOT NULL,
    open_issues BIGINT,
    watchers    BIGINT,
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo, ts_event)
);

CREATE TABLE headlines (
    source          VARCHAR     NOT NULL,   -- feed name from config
    item_id         VARCHAR     NOT NULL,   -- guid, else link, else a hash of the title
    ts_event        TIMESTAMPTZ NOT NULL,   -- published
    title           VARCHAR     NOT NULL,
    link            VARCHAR,
    matched_tickers VARCHAR[]   NOT NULL,
    matched_labs    VARCHAR[]   NOT NULL,
    ts_ingested     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, item_id)
);

-- Daily or intraday scalar series: VIX, the high-yield spread, ...
CREATE TABLE market_series (
    series      VARCHAR     NOT NULL,   -- 'VIX', 'BAMLH0A0HYM2'
    ts_event    TIMESTAMPTZ NOT NULL,
    value       DOUBLE      NOT NULL,
    source      VARCHAR     NOT NULL,   -- 'cboe', 'fred', 'sim'
    ts_ingested TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (series, ts_event)
);

-- Rows that failed parsing or validation, with the raw payload and the reason: nothing is
-- lost. Keyed by content so re-ingesting the same bad payload does not pile up copies.
CREATE TABLE quarantine (
    feed           VARCHAR     NOT NULL,
    payload_sha256 VARCHAR     NOT NULL,
    payload        VARCHAR     NOT NULL,
    reason         VARCHAR     NOT NULL,
    run_id         VARCHAR     NOT NULL,
    ts_ingested    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feed, payload_sha256)
);

CREATE TABLE ingestion_runs (
    run_id             VARCHAR     NOT NULL,
    feed               VARCHAR     NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    finished_at        TIMESTAMPTZ,
    window_start       TIMESTAMPTZ,
    window_end         TIMESTAMPTZ,
    rows_loaded        BIGINT      NOT NULL,
    rows_quarantined   BIGINT      NOT NULL,
    status             VARCHAR     NOT NULL,   -- 'ok' | 'degraded' | 'failed'
    error              VARCHAR,
    validation_summary JSON,
    PRIMARY KEY (run_id, feed)
);

-- Per-feed cursors and caches (ETags, last snapshot hashes) that make the next fetch cheap.
CREATE TABLE feed_state (
    feed       VARCHAR     NOT NULL,
    key        VARCHAR     NOT NULL,
    value      VARCHAR     NOT NULL,
    ts_updated TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feed, key)
);
