"""Small calculations several strategies share: resampling, volatility, z-scores, brackets.

They work on numpy columns (core.snapshot.BarArrays, `columns`): a strategy asks many
small questions of the same rows, and each polars call costs more than the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.snapshot import MICROSECOND, BarArrays, IntArray, MarketSnapshot, micros_of
from core.types import Side, TradeProposal

FloatArray = NDArray[np.float64]
T = TypeVar("T", bound=np.generic)


def resample(bars: BarArrays, every: timedelta) -> BarArrays:
    """Bars aggregated per `every` bucket (UTC-aligned, like polars' group_by_dynamic): first
    open, highest high, lowest low, last close, stamped with the bucket's start; empty buckets
    are left out."""
    if not bars.size:
        return bars
    period = every // MICROSECOND
    buckets = bars.ts // period
    starts = np.flatnonzero(np.diff(buckets, prepend=buckets[0] - 1))
    ends = np.append(starts[1:], bars.size) - 1
    return BarArrays(
        buckets[starts] * period,
        bars.open[starts],
        np.maximum.reduceat(bars.high, starts),
        np.minimum.reduceat(bars.low, starts),
        bars.close[ends],
    )


def columns(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, NDArray[Any]]:
    """Columns of a frame as numpy arrays, ts_event as core.snapshot.micros."""
    return {name: _as_numpy(frame.get_column(name)) for name in names}


def table_column(snapshot: MarketSnapshot, table: str, name: str) -> NDArray[Any]:
    """One column of a snapshot's table as a read-only numpy array, as `columns` reads it, once
    per frame of the table (core.snapshot.TableMemo)."""
    return snapshot.from_table(table, ("column", name), lambda frame: read_only(_as_numpy(frame.get_column(name))))


def table_matches(snapshot: MarketSnapshot, table: str, name: str, value: str) -> NDArray[np.bool_]:
    """Which rows of a snapshot's table hold `value` in a text column, once per frame and value:
    polars compares text in place, where numpy would first make a Python string of every cell."""
    return snapshot.from_table(
        table, ("matches", name, value), lambda frame: read_only(frame.get_column(name).eq_missing(value).to_numpy())
    )


def _as_numpy(column: pl.Series) -> NDArray[Any]:
    return micros_of(column) if column.name == "ts_event" else column.to_numpy()


@dataclass(frozen=True, slots=True)
class TimeSeries:
    """Values of a table's rows in time order (ts as core.snapshot.micros; equal times in row
    order), read-only: kept with the table's frame and shared between cycles (TableMemo)."""

    ts: IntArray
    values: NDArray[Any]

    @classmethod
    def of(cls, ts: IntArray, values: NDArray[Any]) -> TimeSeries:
        order = np.argsort(ts, kind="stable")
        return cls(read_only(ts[order]), read_only(values[order]))


def read_only(values: NDArray[T]) -> NDArray[T]:
    """Shared between cycles: a strategy writing into it would change what later cycles see."""
    values.flags.writeable = False
    return values


def average_true_range(bars: BarArrays, window: int) -> float | None:
    """Mean true range of the last `window` bars; None when there are not enough bars."""
    if bars.size < window + 1:
        return None
    tail = bars.tail(window + 1)
    high = tail.high[1:]
    low = tail.low[1:]
    previous_close = tail.close[:-1]
    true_range = np.maximum(high - low, np.maximum(np.abs(high - previous_close), np.abs(low - previous_close)))
    return float(true_range.mean())


def confidence_from_excess(ratio: float) -> float:
    """0.3 at a view's threshold (ratio 1), rising with diminishing steps towards 0.9."""
    return 0.3 + 0.6 * (1.0 - math.exp(-max(ratio - 1.0, 0.0)))


def zscore_of_last(values: FloatArray) -> float | None:
    """How many standard deviations the last value is from the mean of all; None if undefined."""
    if values.size < 3:
        return None
    deviation = float(values.std(ddof=1))
    if not np.isfinite(deviation) or deviation == 0:
        return None
    return float((values[-1] - values.mean()) / deviation)


def bracket(
    *,
    strategy: str,
    symbol: str,
    side: Side,
    entry: float,
    risk: float,
    reward_risk: float,
    horizon: timedelta,
    confidence: float,
    signal_ids: tuple[str, ...],
    now: datetime,
    trail_pct: float | None = None,
    reason: str = "",
) -> TradeProposal:
    """A proposal whose stop is `risk` away from entry and whose target is reward_risk x risk away."""
    stop = entry - side.sign * risk
    target = entry + side.sign * risk * reward_risk
    return TradeProposal(
        strategy=strategy,
        symbol=symbol,
        side=side,
        entry=entry,
        stop=stop,
        target=target,
        horizon=horizon,
        confidence=confidence,
        signal_ids=signal_ids,
        ts_event=now,
        trail_pct=trail_pct,
        reason=reason,
    )
