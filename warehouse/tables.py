"""Which warehouse tables hold what; a test checks this against sql/schema."""

from __future__ import annotations

# Each feed (one ingestion flow, one ingestion_runs row per run) and the tables it fills.
TABLES_BY_FEED: dict[str, tuple[str, ...]] = {
    "bars": ("bars",),
    "binance": ("funding_rates", "premium_index", "open_interest"),
    "cme": ("margin_rates", "margin_notices"),
    "metal_premium": ("metal_premiums",),
    "macro_calendar": ("economic_events",),
    "github": ("github_releases", "repo_stats"),
    "narrative": ("headlines",),
    "vol_credit": ("market_series",),
}

FEED_TABLES: tuple[str, ...] = tuple(table for tables in TABLES_BY_FEED.values() for table in tables)

FEED_OF_TABLE: dict[str, str] = {table: feed for feed, tables in TABLES_BY_FEED.items() for table in tables}

INGESTION_TABLES: tuple[str, ...] = ("quarantine", "ingestion_runs", "feed_state")

TRADING_TABLES: tuple[str, ...] = (
    "runs",
    "run_strategies",
    "cycles",
    "regimes",
    "signals",
    "strategy_abstentions",
    "cycle_readiness",
    "proposals",
    "risk_decisions",
    "orders",
    "fills",
    "trades",
    "positions",
    "equity",
    "strategy_weights",
    "kill_switch_events",
    "engine_state",
    "reconciliations",
    "run_prices",
)

# What HYDRA told people (alerts), kept apart from any one run's rows.
OPERATIONS_TABLES: tuple[str, ...] = ("alerts",)

META_TABLES: tuple[str, ...] = ("schema_version",)
