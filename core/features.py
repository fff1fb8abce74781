"""Regime features: one row per trading session of the reference index, in absolute units.

A regime is a market-wide state that lasts days to months, so its features are measured on
sessions, not on bars: whatever the timeframe of the data (minute bars, 30-minute bars or
daily closes), the reference index is reduced to one close per session, the latest session's
close being the latest price when that session is still in progress. Windows count sessions
of the exchange calendar, never calendar days, so a holiday, a half day or a missing minute
changes nothing. Values are absolute (an annualised volatility, a drawdown, a VIX level),
never ranks or z-scores within the history at hand, so a volatile history cannot call its
volatile sessions normal.

Columns (`Feature`):

    DAY              log return of the session (so far), from the previous session's close
    WEEK             log return over the last 5 sessions
    MONTH            log return over the last 21 sessions
    VOLATILITY       annualised sample std (ddof=1) of the last 21 session returns, x sqrt(252)
    TREND            t-statistic of the mean session return over the last 63 sessions (at least 21):
                     sum(r) / (std(r) sqrt(n))
    DRAWDOWN         log(close / highest close of the last 252 sessions (at least 21)), <= 0
    FEAR_LEVEL       the fear index's level (VIX) at the session; NaN without one
    FEAR_RISE        log change of the fear ETF's close (VIXY) over 5 sessions; NaN without one
    CREDIT_WIDENING  change of the high-yield spread over 21 sessions, in points; NaN without one
    CREDIT_DRAWDOWN  log drawdown of the credit ETF (HYG) from its highest close of 63 sessions;
                     NaN without one

A price feature needs `SessionWindows.minimum` session returns (21: a month); before that it
is NaN. A gauge's value is carried to later sessions for at most `SessionWindows.gauge_carry`
sessions (a daily series published late, a holiday of its own), never longer.

`session_closes` turns bars into session closes with the exchange calendar (pure: the
calendar is passed in); `compute_features` is O(sessions) and vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from core.calendar import NOT_A_SESSION, Sessions
from core.snapshot import BarArrays, IntArray, micros

FloatArray = NDArray[np.float64]
SessionValues = tuple[IntArray, FloatArray]  # (session indices, one value per session), oldest first

SESSIONS_PER_YEAR = 252


class Feature(IntEnum):
    """Columns of a feature matrix, in order."""

    DAY = 0
    WEEK = 1
    MONTH = 2
    VOLATILITY = 3
    TREND = 4
    DRAWDOWN = 5
    FEAR_LEVEL = 6
    FEAR_RISE = 7
    CREDIT_WIDENING = 8
    CREDIT_DRAWDOWN = 9


FEATURE_NAMES: tuple[str, ...] = tuple(f.name.lower() for f in Feature)
N_FEATURES = len(Feature)
PRICE_FEATURES = (Feature.DAY, Feature.WEEK, Feature.MONTH, Feature.VOLATILITY, Feature.TREND, Feature.DRAWDOWN)

# Below this, a window's return dispersion is floating-point residue of a flat or
# constant-growth series, not movement: the trend is then 0 rather than a huge ratio of noise.
_FLAT_STD = 1e-12


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Window lengths in sessions."""

    week: int = 5
    month: int = 21
    volatility: int = 21
    trend: int = 63
    drawdown: int = 252
    credit_drawdown: int = 63
    minimum: int = 21  # session returns a price feature needs; the long windows use what there is above it
    gauge_carry: int = 3  # sessions a gauge's last value stands in for missing ones

    def __post_init__(self) -> None:
        for name in ("week", "month", "volatility", "trend", "drawdown", "credit_drawdown", "minimum"):
            if getattr(self, name) < 2:
                raise ValueError(f"SessionWindows.{name} must be at least 2 sessions")
        if self.minimum > min(self.trend, self.drawdown) or max(self.week, self.month, self.volatility) > self.minimum:
            raise ValueError("SessionWindows: the full windows (week, month, volatility) must fit in `minimum`")
        if self.gauge_carry < 0:
            raise ValueError("SessionWindows.gauge_carry must be >= 0")

    @property
    def sessions_needed(self) -> int:
        """Session closes before the first complete row of price features, that row's session included."""
        return self.minimum + 1

    @property
    def lookback(self) -> int:
        """Session closes the latest row can depend on."""
        return max(self.drawdown, self.trend + 1, self.credit_drawdown)


# The regime's windows: what its reading (core.pipeline) and what a run must hold first (core.readiness) count.
SESSION_WINDOWS = SessionWindows()


@dataclass(frozen=True, slots=True)
class SessionSeries:
    """Per-session inputs aligned on the reference index's sessions, oldest first.

    `sessions` are indices into the calendar's sessions (increasing); a gauge is None when the
    world has none, and NaN at a session it has no value for.
    """

    sessions: IntArray
    close: FloatArray
    fear_level: FloatArray | None = None
    fear_price: FloatArray | None = None
    credit_spread: FloatArray | None = None
    credit_price: FloatArray | None = None

    def __post_init__(self) -> None:
        n = self.sessions.shape[0]
        if self.close.shape != (n,) or (n > 1 and np.any(np.diff(self.sessions) <= 0)):
            raise ValueError("SessionSeries: one close per session, sessions strictly increasing")
        if not np.all(np.isfinite(self.close) & (self.close > 0)):
            raise ValueError("SessionSeries: closes must be positive and finite")
        for name in ("fear_level", "fear_price", "credit_spread", "credit_price"):
            values: FloatArray | None = getattr(self, name)
            if values is not None and values.shape != (n,):
                raise ValueError(f"SessionSeries.{name}: expected {n} values, got shape {values.shape}")

    def __len__(self) -> int:
        return int(self.sessions.shape[0])

    def tail(self, count: int) -> SessionSeries:
        keep = slice(max(len(self) - count, 0), None)
        return SessionSeries(
            self.sessions[keep],
            self.close[keep],
            *(None if values is None else values[keep] for values in self._gauges),
        )

    @property
    def _gauges(self) -> tuple[FloatArray | None, ...]:
        return (self.fear_level, self.fear_price, self.credit_spread, self.credit_price)


def compute_features(series: SessionSeries, windows: SessionWindows = SessionWindows()) -> FloatArray:
    """Feature matrix of shape (sessions, N_FEATURES); NaN where a window has too few sessions or a gauge is absent."""
    n = len(series)
    out = np.full((n, N_FEATURES), np.nan)
    if n == 0:
        return out
    log_close = np.log(series.close)
    returns = np.full(n, np.nan)
    returns[1:] = np.diff(log_close)
    # Row i is complete once it has `minimum` returns before or at it: i >= minimum.
    complete = np.arange(n) >= windows.minimum

    out[:, Feature.DAY] = returns
    out[:, Feature.WEEK] = _change(log_close, windows.week)
    out[:, Feature.MONTH] = _change(log_close, windows.month)
    out[:, Feature.VOLATILITY] = np.sqrt(_trailing_variance(returns, windows.volatility) * SESSIONS_PER_YEAR)

    count, total, deviations = _trailing_moments(returns, windows.trend)
    std = np.sqrt(deviations / np.maximum(count - 1, 1))
    trend = np.divide(total, std * np.sqrt(count), out=np.zeros(n), where=std > _FLAT_STD)
    out[:, Feature.TREND] = trend

    out[:, Feature.DRAWDOWN] = log_close - _trailing_max(log_close, windows.drawdown)
    for column in PRICE_FEATURES:
        out[~complete, column] = np.nan
    out[0, Feature.DAY] = np.nan

    carry = windows.gauge_carry
    if series.fear_level is not None:
        out[:, Feature.FEAR_LEVEL] = _carried(series.fear_level, carry)
    if series.fear_price is not None:
        out[:, Feature.FEAR_RISE] = _change(np.log(_carried(series.fear_price, carry)), windows.week)
    if series.credit_spread is not None:
        out[:, Feature.CREDIT_WIDENING] = _change(_carried(series.credit_spread, carry), windows.month)
    if series.credit_price is not None:
        log_credit = np.log(_carried(series.credit_price, carry))
        out[:, Feature.CREDIT_DRAWDOWN] = log_credit - _trailing_max(log_credit, windows.credit_drawdown)
    return out


def latest_features(series: SessionSeries, windows: SessionWindows = SessionWindows()) -> FloatArray:
    """The last row of `compute_features`, from the sessions it can depend on only."""
    recent = series.tail(windows.lookback + windows.gauge_carry)
    return compute_features(recent, windows)[-1] if len(recent) else np.full(N_FEATURES, np.nan)


def session_closes(bars: BarArrays, sessions: Sessions, until: datetime, *, daily: bool) -> SessionValues:
    """The close of every session `bars` cover, by `until`: (session indices, closes), oldest first.

    Daily bars name their session by their UTC date (core.calendar.MarketCalendar.bar_close) and
    count once it has closed. Intraday bars count from the session they fall in (pre- and
    post-market bars belong to none) once they have closed; a session's close is its last bar's,
    so a session still in progress closes, for now, at its latest price. `bars` of intraday data
    must be the bars closed by `until` already: a bar's end is not known here.
    """
    if not bars.size:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if daily:
        index = sessions.on_days(bars.ts)
        found = (index != NOT_A_SESSION) & (sessions.closes[index] <= micros(until))
    else:
        index = sessions.containing(bars.ts)
        found = index != NOT_A_SESSION
    index, close = index[found], bars.close[found]
    if not index.size:
        return np.empty(0, dtype=np.int64), np.empty(0)
    # Bars are in time order, so each session's bars are one run: its close is the run's last.
    last_of_run = np.append(index[1:] != index[:-1], True)
    return index[last_of_run].astype(np.int64), close[last_of_run]


def merge_closes(
    preferred: tuple[IntArray, FloatArray], other: tuple[IntArray, FloatArray]
) -> tuple[IntArray, FloatArray]:
    """Session closes of both, the preferred one's where both have a session."""
    sessions = np.union1d(preferred[0], other[0])
    close = np.empty(sessions.shape[0])
    close[np.searchsorted(sessions, other[0])] = other[1]
    close[np.searchsorted(sessions, preferred[0])] = preferred[1]
    return sessions, close


def aligned(sessions: IntArray, values_at: SessionValues) -> FloatArray:
    """Values (by session index) at `sessions`, NaN where there is none."""
    known, values = values_at
    out = np.full(sessions.shape[0], np.nan)
    if not known.size:
        return out
    position = np.minimum(np.searchsorted(known, sessions), known.size - 1)
    found = known[position] == sessions
    out[found] = values[position[found]]
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


def _change(values: FloatArray, lag: int) -> FloatArray:
    out = np.full(values.shape[0], np.nan)
    out[lag:] = values[lag:] - values[:-lag]
    return out


def _trailing_moments(values: FloatArray, window: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row, over the trailing window (up to `window` rows, NaN skipped): how many values, their
    sum, and their sum of squared deviations from the window's mean.

    The running sums are taken around the overall mean, so their differences keep their digits.
    """
    present = ~np.isnan(values)
    shift = float(np.mean(values[present])) if present.any() else 0.0
    centred = np.where(present, values - shift, 0.0)
    starts = np.maximum(np.arange(values.shape[0]) + 1 - window, 0)

    def trailing(column: FloatArray) -> FloatArray:
        sums = np.concatenate(([0.0], np.cumsum(column)))
        result: FloatArray = sums[1:] - sums[starts]
        return result

    count = trailing(present.astype(np.float64))
    total, squares = trailing(centred), trailing(centred * centred)
    deviations = np.maximum(squares - total * total / np.maximum(count, 1), 0.0)
    return count, total + shift * count, deviations


def _trailing_variance(values: FloatArray, window: int) -> FloatArray:
    """Sample variance (ddof=1) over the trailing `window` rows; NaN unless all of them are present."""
    count, _, deviations = _trailing_moments(values, window)
    variance = deviations / np.maximum(count - 1, 1)
    variance[count < window] = np.nan
    return variance


def _trailing_max(values: FloatArray, window: int) -> FloatArray:
    """Maximum over the trailing window (up to `window` rows, ignoring NaN) in O(n): expanding
    at first, then block-wise prefix and suffix maxima (van Herk / Gil-Werman)."""
    n = values.shape[0]
    filled = np.where(np.isnan(values), -np.inf, values)
    out = np.maximum.accumulate(filled) if n else filled.copy()
    if n >= window:
        padded = np.full(-(-n // window) * window, -np.inf)
        padded[:n] = filled
        blocks = padded.reshape(-1, window)
        prefix = np.maximum.accumulate(blocks, axis=1).ravel()
        suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
        # A window [i - w + 1, i] spans at most two blocks: the suffix of the first and the prefix of the second.
        out[window - 1 :] = np.maximum(suffix[: n - window + 1], prefix[window - 1 : n])
    out[np.isinf(out)] = np.nan
    return out


def _carried(values: FloatArray, sessions: int) -> FloatArray:
    """Each NaN replaced by the last value before it, if that lies at most `sessions` rows back."""
    n = values.shape[0]
    present = ~np.isnan(values)
    last = np.where(present, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    usable = (last >= 0) & (np.arange(n) - last <= sessions)
    out = np.full(n, np.nan)
    out[usable] = values[last[usable]]
    return out
