"""The live side of a decision: the warehouse's point-in-time read becomes a MarketSnapshot.

One cycle (the trading flow) and a replay of thousands read the same way: what cycles in a
window may read is loaded once (`load_history`; a live cycle's window is its own minute), and
each cycle's snapshot is that history as of its moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from core.calendar import Sessions, Timeframe
from core.config import EngineConfig
from core.readiness import history_needs
from core.snapshot import (
    BarSplit,
    FeedHealth,
    IntArray,
    MarketSnapshot,
    TableMemo,
    micros,
    micros_of,
    split_bars,
    visible_split,
)
from hydra.context import market_calendar
from warehouse import Warehouse
from warehouse.read import DecisionHistory, DecisionWindows, feed_health


def decision_windows(config: EngineConfig, sessions: Sessions) -> DecisionWindows:
    """The snapshot's windows on the exchange calendar: N sessions back from the one in progress
    (core.readiness.history_needs, which the first fetch of a symbol's bars reads too)."""
    needs = history_needs(config)
    return DecisionWindows(
        timeframe=config.timeframe,
        bars_since=lambda moment: needs.since(sessions, moment, config.timeframe),
        daily_bars_since=lambda moment: needs.since(sessions, moment, Timeframe.DAY_1),
        facts=timedelta(days=config.snapshot.facts_days),
    )


class FeedHealthTimeline:
    """Each feed's health after each of its runs (sql/read/feed_health.sql): as of a moment,
    the newest run finished by then."""

    def __init__(self, warehouse: Warehouse, first: datetime, last: datetime) -> None:
        self._finished: dict[str, IntArray] = {}
        self._health: dict[str, list[FeedHealth]] = {}
        frame = feed_health(warehouse, first, last)
        for (feed,), runs in frame.group_by("feed", maintain_order=True):
            self._finished[str(feed)] = micros_of(runs.get_column("finished_at"))
            self._health[str(feed)] = [
                FeedHealth(row["feed"], row["last_success"], row["status"], row["error"])
                for row in runs.iter_rows(named=True)
            ]

    def at(self, as_of: datetime) -> dict[str, FeedHealth]:
        known = {}
        for feed, finished in self._finished.items():
            runs = int(np.searchsorted(finished, micros(as_of), side="right"))
            if runs:
                known[feed] = self._health[feed][runs - 1]
        return known


@dataclass(frozen=True)
class KnownHistory:
    """What every cycle from `first` to `last` may read, loaded once: the tables, their bars
    split by symbol, and the feeds' health."""

    tables: DecisionHistory
    bars: BarSplit
    health: FeedHealthTimeline
    memo: TableMemo = field(default_factory=TableMemo)  # what strategies derive from a frame, shared by the cycles


def load_history(warehouse: Warehouse, config: EngineConfig, first: datetime, last: datetime) -> KnownHistory:
    """What every cycle from `first` to `last` may read (a replay's chunk, or one live minute)."""
    tables = DecisionHistory.load(warehouse, first, last, decision_windows(config, market_calendar().equities))
    return KnownHistory(tables, split_bars(tables.tables["bars"]), FeedHealthTimeline(warehouse, first, last))


def load_snapshot(
    warehouse: Warehouse, config: EngineConfig, as_of: datetime, history: KnownHistory | None = None
) -> MarketSnapshot:
    """The snapshot as of `as_of`, from a loaded history when the caller has one covering it."""
    known = history if history is not None else load_history(warehouse, config, as_of, as_of)
    tables = known.tables.at(as_of)
    return MarketSnapshot(
        as_of=as_of,
        tables=tables,
        feed_health=known.health.at(as_of),
        timeframe=config.timeframe,
        calendar=market_calendar(),
        bar_split=visible_split(known.bars, tables.rows["bars"]),
        table_memo=known.memo,
    )
