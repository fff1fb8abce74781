"""The live side of a decision: the warehouse's point-in-time read becomes a MarketSnapshot."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.config import EngineConfig
from core.snapshot import FeedHealth, MarketSnapshot
from warehouse import Warehouse
from warehouse.read import DecisionHistory, DecisionWindows, feed_health


def decision_windows(config: EngineConfig) -> DecisionWindows:
    windows = config.snapshot
    return DecisionWindows(
        minute_bars=timedelta(days=windows.minute_bars_days),
        daily_bars=timedelta(days=windows.daily_bars_days),
        facts=timedelta(days=windows.facts_days),
    )


def load_history(warehouse: Warehouse, config: EngineConfig, first: datetime, last: datetime) -> DecisionHistory:
    """What every cycle from `first` to `last` may read, loaded once (a replay's chunk)."""
    return DecisionHistory.load(warehouse, first, last, decision_windows(config))


def load_snapshot(
    warehouse: Warehouse, config: EngineConfig, as_of: datetime, history: DecisionHistory | None = None
) -> MarketSnapshot:
    """The snapshot as of `as_of`, from a loaded history when the caller has one covering it."""
    known = history if history is not None else load_history(warehouse, config, as_of, as_of)
    return MarketSnapshot(as_of=as_of, tables=known.at(as_of), feed_health=current_feed_health(warehouse, as_of))


def current_feed_health(warehouse: Warehouse, as_of: datetime) -> dict[str, FeedHealth]:
    """Each feed's last run and last success, as recorded by as_of."""
    return {
        row["feed"]: FeedHealth(row["feed"], row["last_success"], row["status"], row["error"])
        for row in feed_health(warehouse, as_of).iter_rows(named=True)
    }
