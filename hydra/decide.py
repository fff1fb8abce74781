"""The live side of a decision: the warehouse's point-in-time read becomes a MarketSnapshot."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.config import EngineConfig
from core.snapshot import FeedHealth, MarketSnapshot
from warehouse import Warehouse
from warehouse.read import decision_tables, feed_health


def load_snapshot(warehouse: Warehouse, config: EngineConfig, as_of: datetime) -> MarketSnapshot:
    windows = config.snapshot
    tables = decision_tables(
        warehouse,
        as_of,
        minute_bars=timedelta(days=windows.minute_bars_days),
        daily_bars=timedelta(days=windows.daily_bars_days),
        facts=timedelta(days=windows.facts_days),
    )
    health = {
        row["feed"]: FeedHealth(row["feed"], row["last_success"], row["status"], row["error"])
        for row in feed_health(warehouse, as_of).iter_rows(named=True)
    }
    return MarketSnapshot(as_of=as_of, tables=tables, feed_health=health)
