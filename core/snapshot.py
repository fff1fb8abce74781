"""What the decision core sees of the world at one moment: the warehouse's point-in-time
read, as polars frames in the warehouse's table shapes, plus the health of every feed.

Built by the warehouse (live) or the replay runner (backtest); consumed by strategies, which
never learn which world produced it. Every frame holds only rows with ts_ingested <= as_of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.types import ContractError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """The last ingestion of a feed as known at as_of: strategies abstain on a stale or failed feed."""

    feed: str
    last_success: datetime | None
    status: str  # status of the last run: 'ok' | 'degraded' | 'failed'
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    as_of: datetime
    tables: Mapping[str, pl.DataFrame]
    feed_health: Mapping[str, FeedHealth] = field(default_factory=dict)
    # Bars split by (symbol, timeframe) on first use: every strategy asks for a few symbols,
    # and filtering the whole frame for each ask cost most of a cycle.
    _bars_by_key: dict[tuple[str, str], pl.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None or self.as_of.utcoffset() != timedelta(0):
            raise ContractError("snapshot as_of must be UTC-aware")

    def table(self, name: str) -> pl.DataFrame:
        """The rows of one warehouse table (an empty frame when the snapshot has none)."""
        return self.tables.get(name, pl.DataFrame())

    def bars(self, symbol: str, timeframe: str = "1Min") -> pl.DataFrame:
        """One symbol's bars at one timeframe, oldest first."""
        if not self._bars_by_key:
            frame = self.table("bars")
            if frame.is_empty():
                return frame
            parts = frame.sort("ts_event").partition_by("symbol", "timeframe", as_dict=True)
            self._bars_by_key.update({(str(key[0]), str(key[1])): part for key, part in parts.items()})
        found = self._bars_by_key.get((symbol, timeframe))
        return found if found is not None else self.table("bars").clear()

    def bar_symbols(self, timeframe: str = "1Min") -> list[str]:
        self.bars("", timeframe)  # partitions the bars on first use
        return sorted(symbol for symbol, frame_timeframe in self._bars_by_key if frame_timeframe == timeframe)

    def closes(self, symbol: str, timeframe: str = "1Min") -> FloatArray:
        frame = self.bars(symbol, timeframe)
        return np.empty(0) if frame.is_empty() else frame.get_column("close").to_numpy().astype(np.float64)

    def last_price(self, symbol: str) -> float | None:
        closes = self.closes(symbol)
        return float(closes[-1]) if closes.size else None

    def input_age(self, table: str) -> timedelta | None:
        """How old the newest fact of a table is at as_of; None when there is none."""
        frame = self.table(table)
        if frame.is_empty():
            return None
        newest: datetime = frame.get_column("ts_event").max()  # type: ignore[assignment]
        return self.as_of - newest
