"""What the decision core sees of the world at one moment: the warehouse's point-in-time
read, as polars frames in the warehouse's table shapes, plus the health of every feed.

Built by the warehouse (live) or the replay runner (backtest); consumed by strategies, which
never learn which world produced it. Every frame holds only rows with ts_ingested <= as_of.

A cycle asks the same snapshot many small questions (a symbol's close at a time, its bars in
a window): each polars call costs more than the arithmetic on a few thousand bars, so bars
are split by (symbol, timeframe) once, into numpy columns that a binary search slices by time,
and whatever else several callers derive from the snapshot can be kept with `derived`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.types import ContractError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
T = TypeVar("T")

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
PRICE_COLUMNS = ("open", "high", "low", "close")


def micros(moment: datetime) -> int:
    """A UTC moment in the unit of BarArrays.ts: whole microseconds since the Unix epoch."""
    return (moment - UNIX_EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    return UNIX_EPOCH + value * MICROSECOND


def micros_of(column: pl.Series) -> IntArray:
    """A datetime column as `micros`."""
    if isinstance(column.dtype, pl.Datetime) and column.dtype.time_unit == "us":
        # Stored as such: a cast reads it as it is, ten times faster than converting.
        return column.cast(pl.Int64).to_numpy()
    return column.dt.epoch("us").to_numpy()


@dataclass(frozen=True, slots=True)
class BarArrays:
    """One symbol's bars at one timeframe as numpy columns, oldest first, ts as `micros`."""

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray

    @classmethod
    def of(cls, bars: pl.DataFrame) -> BarArrays:
        """The columns of a bars frame, in its row order."""
        prices = (np.asarray(bars.get_column(name).to_numpy(), dtype=np.float64) for name in PRICE_COLUMNS)
        return cls(micros_of(bars.get_column("ts_event")), *prices)

    @property
    def size(self) -> int:
        return int(self.ts.size)

    def count_until(self, moment: datetime) -> int:
        """How many bars opened at or before `moment`: the first ones, since bars are in time order."""
        return int(np.searchsorted(self.ts, micros(moment), side="right"))

    def count_before(self, moment: datetime) -> int:
        """How many bars opened strictly before `moment`."""
        return int(np.searchsorted(self.ts, micros(moment), side="left"))

    def until(self, moment: datetime) -> BarArrays:
        """The bars opened at or before `moment`."""
        return self.rows(0, self.count_until(moment))

    def tail(self, count: int) -> BarArrays:
        """The last `count` bars (all of them when there are fewer)."""
        return self.rows(max(self.size - count, 0), self.size)

    def rows(self, start: int, stop: int) -> BarArrays:
        """Bars start..stop-1 (views, not copies)."""
        window = slice(start, stop)
        return BarArrays(self.ts[window], self.open[window], self.high[window], self.low[window], self.close[window])


EMPTY_BARS = BarArrays(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0), np.empty(0))

BarKey = tuple[str, str]  # (symbol, timeframe)


@dataclass(frozen=True, slots=True)
class BarSplit:
    """A bars frame with each (symbol, timeframe) in one block of rows, oldest first."""

    frame: pl.DataFrame
    rows: Mapping[BarKey, tuple[int, int]]  # the block's first row and the row after its last
    arrays: Mapping[BarKey, BarArrays]

    def part(self, key: BarKey) -> pl.DataFrame | None:
        found = self.rows.get(key)
        return None if found is None else self.frame.slice(found[0], found[1] - found[0])


def split_bars(frame: pl.DataFrame) -> BarSplit:
    """A bars frame split by (symbol, timeframe).

    The warehouse reads bars ordered by symbol, timeframe and time: that order is checked (two
    run-length passes over the keys, one over the times) and used as it is; any other is sorted.
    """
    if frame.is_empty():
        return BarSplit(frame, {}, {})
    arrays = BarArrays.of(frame)
    keys, starts = _key_runs(frame)
    # In order when no key comes back after another and time rises within each run.
    if len(set(keys)) < len(keys) or not np.isin(np.flatnonzero(np.diff(arrays.ts) <= 0) + 1, starts).all():
        frame = frame.sort("symbol", "timeframe", "ts_event")
        arrays = BarArrays.of(frame)
        keys, starts = _key_runs(frame)
    stops = np.append(starts[1:], frame.height)
    rows = {key: (int(start), int(stop)) for key, start, stop in zip(keys, starts, stops, strict=True)}
    return BarSplit(frame, rows, {key: arrays.rows(*block) for key, block in rows.items()})


def _key_runs(frame: pl.DataFrame) -> tuple[list[BarKey], IntArray]:
    """The (symbol, timeframe) of each run of rows with the same key, and the run's first row."""
    boundaries: list[IntArray] = []
    labels: list[list[str]] = []
    for column in ("symbol", "timeframe"):
        runs = frame.get_column(column).rle()
        lengths = runs.struct.field("len").to_numpy().astype(np.int64)
        boundaries.append(np.concatenate(([0], np.cumsum(lengths)[:-1])))
        labels.append([str(label) for label in runs.struct.field("value").to_list()])
    starts = np.union1d(*boundaries)
    symbol_run = np.searchsorted(boundaries[0], starts, side="right") - 1
    timeframe_run = np.searchsorted(boundaries[1], starts, side="right") - 1
    keys = [(labels[0][s], labels[1][t]) for s, t in zip(symbol_run.tolist(), timeframe_run.tolist(), strict=True)]
    return keys, starts


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
    # Values derived from the tables, computed on first use: see `derived`.
    _derived: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None or self.as_of.utcoffset() != timedelta(0):
            raise ContractError("snapshot as_of must be UTC-aware")

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """compute(), run once per snapshot and key, so the strategies and the cycle share it.

        A snapshot never changes, so neither does anything computed from it alone: the key
        must name everything else the value depends on (the caller, a symbol, a window's ends).
        """
        if key not in self._derived:
            self._derived[key] = compute()
        value: T = self._derived[key]
        return value

    def table(self, name: str) -> pl.DataFrame:
        """The rows of one warehouse table (an empty frame when the snapshot has none)."""
        found = self.tables.get(name)
        # Built only when missing: making an empty frame costs more than the lookup.
        return found if found is not None else pl.DataFrame()

    def _split(self) -> BarSplit:
        return self.derived("bars split by symbol and timeframe", lambda: split_bars(self.table("bars")))

    def bars(self, symbol: str, timeframe: str = "1Min") -> pl.DataFrame:
        """One symbol's bars at one timeframe, oldest first."""
        found = self._split().part((symbol, timeframe))
        return found if found is not None else self.table("bars").clear()

    def bar_arrays(self, symbol: str, timeframe: str = "1Min") -> BarArrays:
        """The same bars as `bars`, as numpy columns."""
        return self._split().arrays.get((symbol, timeframe), EMPTY_BARS)

    def bar_symbols(self, timeframe: str = "1Min") -> list[str]:
        return sorted(symbol for symbol, frame_timeframe in self._split().rows if frame_timeframe == timeframe)

    def closes(self, symbol: str, timeframe: str = "1Min") -> FloatArray:
        return self.bar_arrays(symbol, timeframe).close.copy()

    def last_price(self, symbol: str) -> float | None:
        closes = self.bar_arrays(symbol).close
        return float(closes[-1]) if closes.size else None

    def input_age(self, table: str) -> timedelta | None:
        """How old the newest fact of a table is at as_of; None when there is none."""
        newest = self.derived(("newest ts_event", table), lambda: self._newest(table))
        return None if newest is None else self.as_of - newest

    def _newest(self, table: str) -> datetime | None:
        frame = self.table(table)
        if frame.is_empty():
            return None
        newest: datetime = frame.get_column("ts_event").max()  # type: ignore[assignment]
        return newest
