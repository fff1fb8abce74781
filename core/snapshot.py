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
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.calendar import MarketCalendar, Timeframe, market_calendar
from core.config import is_crypto
from core.timestamps import MICROSECOND as MICROSECOND
from core.timestamps import UNIX_EPOCH as UNIX_EPOCH
from core.timestamps import IntArray as IntArray
from core.timestamps import from_micros as from_micros
from core.timestamps import micros as micros
from core.types import ContractError

FloatArray = NDArray[np.float64]
T = TypeVar("T")

PRICE_COLUMNS = ("open", "high", "low", "close")


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

    @property
    def window(self) -> tuple[int, int, int]:
        """How many bars, and the first's and the last's times: within one history, this names
        a window of a symbol's bars exactly (`TableMemo.get_for_bars` says why)."""
        return (self.size, int(self.ts[0]), int(self.ts[-1])) if self.size else (0, 0, 0)

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
    """A bars frame's rows by (symbol, timeframe), each key's rows one block, oldest first."""

    rows: Mapping[BarKey, tuple[int, int]]  # the block's first row and the row after its last
    arrays: Mapping[BarKey, BarArrays]
    # The frame's row at each row of the blocks when the frame had to be sorted; None when it
    # was in order already (the warehouse reads it so).
    source_rows: IntArray | None = None


def split_bars(frame: pl.DataFrame) -> BarSplit:
    """A bars frame split by (symbol, timeframe).

    The warehouse reads bars ordered by symbol, timeframe and time: that order is checked (two
    run-length passes over the keys, one over the times) and used as it is; any other is sorted.
    """
    if frame.is_empty():
        return BarSplit({}, {})
    arrays = BarArrays.of(frame)
    keys, starts = _key_runs(frame)
    source_rows = None
    # In order when no key comes back after another and time rises within each run.
    if len(set(keys)) < len(keys) or not np.isin(np.flatnonzero(np.diff(arrays.ts) <= 0) + 1, starts).all():
        frame = frame.with_row_index("source_row").sort("symbol", "timeframe", "ts_event")
        source_rows = frame.get_column("source_row").to_numpy().astype(np.int64)
        arrays = BarArrays.of(frame)
        keys, starts = _key_runs(frame)
    stops = np.append(starts[1:], frame.height)
    rows = {key: (int(start), int(stop)) for key, start, stop in zip(keys, starts, stops, strict=True)}
    return BarSplit(rows, {key: arrays.rows(*block) for key, block in rows.items()}, source_rows)


def visible_split(split: BarSplit, visible: NDArray[np.bool_]) -> BarSplit:
    """`split_bars(frame.filter(visible))`, from `split_bars(frame)`: without a second pass over
    the frame. A key's visible bars are a view of its block when they are consecutive (a
    window's newest bars, the usual case), a copy otherwise; a key with none is left out."""
    if split.source_rows is not None:
        visible = visible[split.source_rows]
    shown = np.flatnonzero(visible)
    # How many rows before each row are visible: its visible rows' positions in `shown`.
    shown_before = np.concatenate(([0], np.cumsum(visible)))
    rows: dict[BarKey, tuple[int, int]] = {}
    arrays: dict[BarKey, BarArrays] = {}
    for key, (start, stop) in split.rows.items():
        first, last = int(shown_before[start]), int(shown_before[stop])
        if first == last:
            continue
        block = split.arrays[key]
        low, high = int(shown[first]) - start, int(shown[last - 1]) - start + 1
        if high - low == last - first:
            arrays[key] = block.rows(low, high)
        else:
            picked = shown[first:last] - start
            arrays[key] = BarArrays(
                block.ts[picked], block.open[picked], block.high[picked], block.low[picked], block.close[picked]
            )
        rows[key] = (first, last)
    return BarSplit(rows, arrays)


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


class TableMemo:
    """Values computed from one table's frame, kept while the frame is the very same object,
    and values computed from one window of a symbol's bars, kept while the window holds the
    same bars.

    A replay hands consecutive snapshots the same frame of a table until a row of it comes or
    goes (facts arrive far less often than cycles run): sharing one memo between them, what a
    strategy derives from that frame is computed once for all those cycles. The frame itself is
    kept with its values, so an identity check can never match a different frame.

    Bars are sliced anew every cycle, so a window of them is named by `BarArrays.window`
    instead. Within one history (the memo's lifetime) a symbol has one bar a time, and a bar is
    seen from when it is learned until it leaves by the window's oldest end. So if two moments
    both see a bar at time a, then of the bars from a to b the later moment sees all that the
    earlier one saw, and two windows with the same ends and the same size hold the same bars.
    An equity's windows stay the same all night, and an hourly window all hour.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, Hashable], tuple[pl.DataFrame, Any]] = {}
        self._bar_values: dict[Hashable, tuple[tuple[int, int, int], Any]] = {}

    def get(self, table: str, key: Hashable, frame: pl.DataFrame, compute: Callable[[pl.DataFrame], T]) -> T:
        found = self._values.get((table, key))
        if found is None or found[0] is not frame:
            found = self._values[(table, key)] = (frame, compute(frame))
        value: T = found[1]
        return value

    def get_for_bars(self, key: Hashable, bars: BarArrays, compute: Callable[[BarArrays], T]) -> T:
        """compute(bars) for one window of one symbol's bars: `key` names the symbol, the
        timeframe and whatever else compute depends on besides the bars."""
        window = bars.window
        found = self._bar_values.get(key)
        if found is None or found[0] != window:
            found = self._bar_values[key] = (window, compute(bars))
        value: T = found[1]
        return value


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    as_of: datetime
    tables: Mapping[str, pl.DataFrame]
    feed_health: Mapping[str, FeedHealth] = field(default_factory=dict)
    # The bars the cycle decides on (`bar_arrays` without a timeframe), and the exchange sessions
    # that say when a daily bar closes; intraday bars close their length after they start.
    timeframe: Timeframe = Timeframe.MIN_1
    calendar: MarketCalendar = field(default_factory=market_calendar, repr=False, compare=False)
    # The bars table already split, when its reader had the split at hand (core.snapshot.visible_split).
    bar_split: BarSplit | None = None
    # Shared with the other snapshots of a replay; a snapshot of its own otherwise.
    table_memo: TableMemo = field(default_factory=TableMemo, repr=False, compare=False)
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

    def from_table(self, table: str, key: Hashable, compute: Callable[[pl.DataFrame], T]) -> T:
        """compute(the table's frame), run once per frame and key: values that depend on one
        table alone are shared by every snapshot holding the same frame of it (TableMemo)."""
        return self.table_memo.get(table, key, self.table(table), compute)

    def from_bars(self, key: Hashable, bars: BarArrays, compute: Callable[[BarArrays], T]) -> T:
        """compute(bars), for a window of one symbol's bars from this snapshot: run once per
        window, shared by every snapshot seeing the same window (TableMemo.get_for_bars)."""
        return self.table_memo.get_for_bars(key, bars, compute)

    def table(self, name: str) -> pl.DataFrame:
        """The rows of one warehouse table (an empty frame when the snapshot has none)."""
        found = self.tables.get(name)
        # Built only when missing: making an empty frame costs more than the lookup.
        return found if found is not None else pl.DataFrame()

    def _split(self) -> BarSplit:
        if self.bar_split is not None:
            return self.bar_split
        return self.derived("bars split by symbol and timeframe", lambda: split_bars(self.table("bars")))

    def bar_arrays(self, symbol: str, timeframe: str | None = None) -> BarArrays:
        """One symbol's bars at one timeframe (the cycle's by default) as numpy columns, oldest first."""
        return self._split().arrays.get((symbol, timeframe or self.timeframe), EMPTY_BARS)

    def bar_symbols(self, timeframe: str | None = None) -> list[str]:
        wanted = timeframe or self.timeframe
        return sorted(symbol for symbol, bars_timeframe in self._split().arrays if bars_timeframe == wanted)

    def closes(self, symbol: str, timeframe: str | None = None) -> FloatArray:
        return self.bar_arrays(symbol, timeframe).close.copy()

    def closed_bars(self, symbol: str, now: datetime) -> BarArrays:
        """The symbol's bars of the cycle's timeframe that had closed by `now`: a feed may already
        hold the bar in progress (Alpaca serves today's daily bar during the session)."""
        bars = self.bar_arrays(symbol)
        return bars.rows(0, bars.count_before(self._closed_before(symbol, now)))

    def quote_age(self, symbol: str, now: datetime) -> timedelta | None:
        """How stale the symbol's newest closed bar of the cycle's timeframe is at `now`: the time
        from its close to the last moment such a bar could have closed (now, or for a daily equity
        bar the last session's close). None without a closed bar."""
        bars = self.closed_bars(symbol, now)
        if not bars.size:
            return None
        if self.timeframe.intraday or is_crypto(symbol):
            latest = now
        else:
            sessions = self.calendar.equities
            latest = sessions.close_of(max(sessions.closed_by(now) - 1, 0))
        return latest - self.bar_end(symbol, from_micros(int(bars.ts[-1])))

    def bar_end(self, symbol: str, start: datetime) -> datetime:
        """When a bar of the cycle's timeframe that started at `start` closes."""
        if self.timeframe.intraday:
            return start + self.timeframe.length
        return self.calendar.bar_close(symbol, self.timeframe, start)

    def _closed_before(self, symbol: str, now: datetime) -> datetime:
        """Bars that started before this moment had closed by `now`."""
        if self.timeframe.intraday or is_crypto(symbol):
            return now - self.timeframe.length + MICROSECOND
        return self.calendar.sessions_closed_before(now)

    def last_price(self, symbol: str) -> float | None:
        """The close of the symbol's newest bar of the cycle's timeframe."""
        closes = self.bar_arrays(symbol).close
        return float(closes[-1]) if closes.size else None

    def input_age(self, table: str) -> timedelta | None:
        """How old the newest fact of a table is at as_of; None when there is none. For bars, the
        freshest symbol's `quote_age`: a bar is known at its close, and a daily bar is as fresh as
        can be until the next session closes."""
        if table == "bars":
            return self.derived("bars age", self._bars_age)
        newest = self.derived(("newest ts_event", table), lambda: self._newest(table))
        return None if newest is None else self.as_of - newest

    def _bars_age(self) -> timedelta | None:
        ages = [age for symbol in self.bar_symbols() if (age := self.quote_age(symbol, self.as_of)) is not None]
        return min(ages, default=None)

    def _newest(self, table: str) -> datetime | None:
        return self.from_table(table, "newest ts_event", _newest_event)


def _newest_event(frame: pl.DataFrame) -> datetime | None:
    if frame.is_empty():
        return None
    newest: datetime = frame.get_column("ts_event").max()  # type: ignore[assignment]
    return newest
