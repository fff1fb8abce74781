"""Regime features from aligned price arrays: whole histories at once, or the latest bar only.

Every input is one value per bar, aligned on the same bars: the reference asset's close
(SPY, say), and optionally a fear gauge (VIXY closes, or VIX levels) and a credit gauge
(HYG closes). A missing bar is NaN, and so is every feature value that needs it (a
window statistic needs every bar of its window, a change needs its two ends), so a gap
never leaks into a feature as a silent zero. Windows count bars, so their defaults
suit minute bars.

`compute_features` is the backtest's path: O(n) in the number of bars (rolling sums by
cumulative sums, rolling maxima by the van Herk / Gil-Werman block scan). `latest_features`
is the live path: it recomputes the last row directly from the tail of the history, and
equals the last row of `compute_features` on the same bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class Feature(IntEnum):
    """Columns of a feature matrix, in order."""

    RET = 0  # log return over return_window
    VOL = 1  # sample std (ddof=1) of one-bar log returns over vol_window
    TREND = 2  # t-statistic of the drift over trend_window: sum(r) / (std(r) * sqrt(window))
    DRAWDOWN = 3  # log(close / max close over drawdown_window), <= 0
    FEAR = 4  # log change of the fear gauge over stress_window; 0 without a gauge
    CREDIT = 5  # log drawdown of the credit gauge over drawdown_window; 0 without a gauge


FEATURE_NAMES: tuple[str, ...] = tuple(f.name.lower() for f in Feature)
N_FEATURES = len(Feature)

# Below this, a window's return dispersion is floating-point residue of a flat or
# constant-growth series, not movement: the trend is then 0 rather than a huge ratio of noise.
_FLAT_STD = 1e-12


@dataclass(frozen=True, slots=True)
class FeatureWindows:
    """Window lengths in bars (defaults for minute bars of a US equity session)."""

    return_window: int = 30
    vol_window: int = 60
    trend_window: int = 390
    drawdown_window: int = 1950
    stress_window: int = 390

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 2:
                raise ValueError(f"FeatureWindows.{name} must be at least 2 bars")

    @property
    def lookback(self) -> int:
        """Bars of history a complete feature row needs, the current bar included."""
        return max(
            self.return_window + 1,
            self.vol_window + 1,
            self.trend_window + 1,
            self.stress_window + 1,
            self.drawdown_window,
        )


@dataclass(frozen=True, slots=True)
class MarketSeries:
    """Aligned per-bar inputs; NaN marks a missing bar, anything else must be positive."""

    close: FloatArray
    fear: FloatArray | None = None
    credit: FloatArray | None = None

    def __post_init__(self) -> None:
        n = self.close.shape[0]
        for name in ("close", "fear", "credit"):
            values: FloatArray | None = getattr(self, name)
            if values is None:
                continue
            if values.ndim != 1 or values.shape[0] != n:
                raise ValueError(f"MarketSeries.{name}: expected a 1-D array of {n} bars, got shape {values.shape}")
            present = values[~np.isnan(values)]
            if not np.all(np.isfinite(present) & (present > 0)):
                raise ValueError(f"MarketSeries.{name}: values must be positive and finite (NaN for a missing bar)")

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def tail(self, bars: int) -> MarketSeries:
        start = max(len(self) - bars, 0)
        return MarketSeries(
            close=self.close[start:],
            fear=None if self.fear is None else self.fear[start:],
            credit=None if self.credit is None else self.credit[start:],
        )


def log_returns(close: FloatArray) -> FloatArray:
    """One-bar log returns; the first bar has none (NaN)."""
    out = np.full(close.shape[0], np.nan)
    log_close = np.log(close)
    out[1:] = log_close[1:] - log_close[:-1]
    return out


def compute_features(series: MarketSeries, windows: FeatureWindows = FeatureWindows()) -> FloatArray:
    """Feature matrix of shape (bars, N_FEATURES); rows inside a window's warm-up are NaN there."""
    n = len(series)
    out = np.zeros((n, N_FEATURES))
    log_close = np.log(series.close)
    returns = log_returns(series.close)

    out[:, Feature.RET] = _lagged_change(log_close, windows.return_window)
    out[:, Feature.VOL] = np.sqrt(_rolling_variance(returns, windows.vol_window))

    trend_sum = rolling_sum(returns, windows.trend_window)
    trend_std = np.sqrt(_rolling_variance(returns, windows.trend_window))
    trend = np.divide(
        trend_sum,
        trend_std * math.sqrt(windows.trend_window),
        out=np.zeros(n),
        where=trend_std > _FLAT_STD,
    )
    trend[np.isnan(trend_sum) | np.isnan(trend_std)] = np.nan
    out[:, Feature.TREND] = trend

    out[:, Feature.DRAWDOWN] = log_close - _rolling_max(log_close, windows.drawdown_window)
    if series.fear is not None:
        out[:, Feature.FEAR] = _lagged_change(np.log(series.fear), windows.stress_window)
    if series.credit is not None:
        log_credit = np.log(series.credit)
        out[:, Feature.CREDIT] = log_credit - _rolling_max(log_credit, windows.drawdown_window)
    return out


def latest_features(series: MarketSeries, windows: FeatureWindows = FeatureWindows()) -> FloatArray:
    """The last row of `compute_features(series, windows)`, from the last `windows.lookback` bars only."""
    recent = series.tail(windows.lookback)
    log_close = np.log(recent.close)
    row = np.zeros(N_FEATURES)

    row[Feature.RET] = _last_change(log_close, windows.return_window)
    row[Feature.VOL] = _last_std(log_close, windows.vol_window)

    trend_std = _last_std(log_close, windows.trend_window)
    trend_sum = _last_change(log_close, windows.trend_window)
    if math.isnan(trend_std) or math.isnan(trend_sum):
        row[Feature.TREND] = np.nan
    elif trend_std > _FLAT_STD:
        row[Feature.TREND] = trend_sum / (trend_std * math.sqrt(windows.trend_window))

    row[Feature.DRAWDOWN] = _last_drawdown(log_close, windows.drawdown_window)
    if recent.fear is not None:
        row[Feature.FEAR] = _last_change(np.log(recent.fear), windows.stress_window)
    if recent.credit is not None:
        row[Feature.CREDIT] = _last_drawdown(np.log(recent.credit), windows.drawdown_window)
    return row


def _lagged_change(values: FloatArray, lag: int) -> FloatArray:
    out = np.full(values.shape[0], np.nan)
    out[lag:] = values[lag:] - values[:-lag]
    return out


def rolling_sum(values: FloatArray, window: int) -> FloatArray:
    """Sum over the trailing window; NaN where the window is incomplete or holds a NaN."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    if n < window:
        return out
    missing = np.isnan(values)
    # Prices rarely have gaps: without one, the gap bookkeeping would be three passes for nothing.
    gapless = not missing.any()
    sums = np.concatenate(([0.0], np.cumsum(values if gapless else np.where(missing, 0.0, values))))
    out[window - 1 :] = sums[window:] - sums[:-window]
    if not gapless:
        gaps = np.concatenate(([0], np.cumsum(missing)))
        out[window - 1 :][gaps[window:] - gaps[:-window] > 0] = np.nan
    return out


def _rolling_variance(values: FloatArray, window: int) -> FloatArray:
    """Sample variance (ddof=1) over the trailing window, from running sums of x and x**2."""
    # Centring on the overall mean keeps the running sums small, so their differences lose
    # fewer digits; the variance itself does not depend on the shift.
    shift = np.nanmean(values) if np.any(~np.isnan(values)) else 0.0
    centred = values - shift
    total = rolling_sum(centred, window)
    squares = rolling_sum(centred * centred, window)
    variance = (squares - total * total / window) / (window - 1)
    return np.maximum(variance, 0.0, where=~np.isnan(variance), out=variance)


def _rolling_max(values: FloatArray, window: int) -> FloatArray:
    """Maximum over the trailing window in O(n): block-wise prefix and suffix maxima."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    if n < window:
        return out
    missing = np.isnan(values)
    padded = np.full(-(-n // window) * window, -np.inf)
    padded[:n] = np.where(missing, -np.inf, values)
    blocks = padded.reshape(-1, window)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    # A window [i - w + 1, i] spans at most two blocks: the suffix of the first and the prefix of the second.
    out[window - 1 :] = np.maximum(suffix[: n - window + 1], prefix[window - 1 : n])
    gaps = rolling_sum(missing.astype(np.float64), window)
    out[gaps > 0] = np.nan
    return out


def _last_change(values: FloatArray, lag: int) -> float:
    if values.shape[0] <= lag:
        return math.nan
    return float(values[-1] - values[-1 - lag])


def _last_std(log_values: FloatArray, window: int) -> float:
    if log_values.shape[0] <= window:
        return math.nan
    return float(np.std(np.diff(log_values[-(window + 1) :]), ddof=1))


def _last_drawdown(log_values: FloatArray, window: int) -> float:
    if log_values.shape[0] < window:
        return math.nan
    return float(log_values[-1] - np.max(log_values[-window:]))
