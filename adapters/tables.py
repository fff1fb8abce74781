"""The polars schema of every feed table, one definition for every client and the simulator.

Columns and order as in sql/schema/001_feeds.sql; tests/test_tables.py checks them against a
freshly migrated warehouse, so a schema change that forgets this file fails there.
"""

from __future__ import annotations

import polars as pl

TIMESTAMP = pl.Datetime("us", "UTC")

TABLE_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "bars": {
        "symbol": pl.String(),
        "timeframe": pl.String(),
        "ts_event": TIMESTAMP,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "trade_count": pl.Int64(),
        "vwap": pl.Float64(),
        "source": pl.String(),
        "ts_ingested": TIMESTAMP,
    },
    "funding_rates": {
        "venue": pl.String(),
        "symbol": pl.String(),
        "ts_event": TIMESTAMP,
        "funding_rate": pl.Float64(),
        "mark_price": pl.Float64(),
        "ts_ingested": TIMESTAMP,
    },
    "premium_index": {
        "venue": pl.String(),
        "symbol": pl.String(),
        "ts_event": TIMESTAMP,
        "mark_price": pl.Float64(),
        "index_price": pl.Float64(),
        "estimated_settle_price": pl.Float64(),
        "last_funding_rate": pl.Float64(),
        "next_funding_time": TIMESTAMP,
        "interest_rate": pl.Float64(),
        "ts_ingested": TIMESTAMP,
    },
    "open_interest": {
        "venue": pl.String(),
        "symbol": pl.String(),
        "period": pl.String(),
        "ts_event": TIMESTAMP,
        "open_interest": pl.Float64(),
        "open_interest_value": pl.Float64(),
        "ts_ingested": TIMESTAMP,
    },
    "margin_rates": {
        "exchange": pl.String(),
        "clearing_code": pl.String(),
        "name": pl.String(),
        "start_period": pl.String(),
        "end_period": pl.String(),
        "maintenance_rate": pl.Float64(),
        "unit": pl.String(),
        "currency": pl.String(),
        "ts_event": TIMESTAMP,
        "ts_ingested": TIMESTAMP,
    },
    "margin_notices": {
        "notice_id": pl.String(),
        "product": pl.String(),
        "rate_type": pl.String(),
        "tier": pl.String(),
        "title": pl.String(),
        "notice_date": pl.Date(),
        "effective_date": pl.Date(),
        "ts_event": TIMESTAMP,
        "unit": pl.String(),
        "old_initial": pl.Float64(),
        "new_initial": pl.Float64(),
        "old_maintenance": pl.Float64(),
        "new_maintenance": pl.Float64(),
        "change_pct": pl.Float64(),
        "source": pl.String(),
        "ts_ingested": TIMESTAMP,
    },
    "metal_premiums": {
        "ts_event": TIMESTAMP,
        "session": pl.String(),
        "sge_cny_per_gram": pl.Float64(),
        "usd_cny": pl.Float64(),
        "sge_usd_per_oz": pl.Float64(),
        "ref_usd_per_oz": pl.Float64(),
        "premium_usd_per_oz": pl.Float64(),
        "premium_pct": pl.Float64(),
        "source": pl.String(),
        "ts_ingested": TIMESTAMP,
    },
    "economic_events": {
        "source": pl.String(),
        "event_type": pl.String(),
        "ts_event": TIMESTAMP,
        "title": pl.String(),
        "importance": pl.Int16(),
        "all_day": pl.Boolean(),
        "ts_ingested": TIMESTAMP,
    },
    "github_releases": {
        "repo": pl.String(),
        "release_id": pl.Int64(),
        "tag_name": pl.String(),
        "name": pl.String(),
        "draft": pl.Boolean(),
        "prerelease": pl.Boolean(),
        "created_at": TIMESTAMP,
        "ts_event": TIMESTAMP,
        "html_url": pl.String(),
        "ts_ingested": TIMESTAMP,
    },
    "repo_stats": {
        "repo": pl.String(),
        "ts_event": TIMESTAMP,
        "stars": pl.Int64(),
        "forks": pl.Int64(),
        "open_issues": pl.Int64(),
        "watchers": pl.Int64(),
        "ts_ingested": TIMESTAMP,
    },
    "headlines": {
        "source": pl.String(),
        "item_id": pl.String(),
        "ts_event": TIMESTAMP,
        "title": pl.String(),
        "link": pl.String(),
        "matched_tickers": pl.List(pl.String()),
        "matched_labs": pl.List(pl.String()),
        "ts_ingested": TIMESTAMP,
    },
    "market_series": {
        "series": pl.String(),
        "ts_event": TIMESTAMP,
        "value": pl.Float64(),
        "source": pl.String(),
        "ts_ingested": TIMESTAMP,
    },
}

# Not a feed fact table: the cursors and ETags a feed keeps between runs.
FEED_STATE_SCHEMA: dict[str, pl.DataType] = {
    "feed": pl.String(),
    "key": pl.String(),
    "value": pl.String(),
    "ts_updated": TIMESTAMP,
}


def empty_frame(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=FEED_STATE_SCHEMA if table == "feed_state" else TABLE_SCHEMAS[table])
