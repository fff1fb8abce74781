"""Small calculations several strategies share: resampling, volatility, z-scores, brackets."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.types import Side, TradeProposal

FloatArray = NDArray[np.float64]


def resample_closes(bars: pl.DataFrame, every: str) -> pl.DataFrame:
    """Last close per `every` bucket ('1h', '1d', ...) of a bar frame: columns ts_event, close."""
    if bars.is_empty():
        return pl.DataFrame(schema={"ts_event": pl.Datetime("us", "UTC"), "close": pl.Float64})
    return bars.sort("ts_event").group_by_dynamic("ts_event", every=every).agg(pl.col("close").last())


def average_true_range(bars: pl.DataFrame, window: int) -> float | None:
    """Mean true range of the last `window` bars; None when there are not enough bars."""
    if bars.height < window + 1:
        return None
    tail = bars.sort("ts_event").tail(window + 1)
    high = tail.get_column("high").to_numpy()[1:]
    low = tail.get_column("low").to_numpy()[1:]
    previous_close = tail.get_column("close").to_numpy()[:-1]
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
