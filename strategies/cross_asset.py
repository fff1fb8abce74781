"""Strategy 5, the cross-asset graph: who leads whom, and what the leaders just did.

Estimation. Hourly log returns of the assets (SPY, TLT, GLD, BTC/USD, HYG, and the proxies,
VIXY) on a UTC hour grid over the last `estimation_days` of completed hours the snapshot
holds: an hour's return runs from the previous traded hour's close to its own, so an
equity's first hour carries the overnight gap, and hours without trading are missing, not
zero. For every leader A, follower B (B traded, A != B) and whole lag L in `lag_hours`:

    corr(A, B, L) = Pearson correlation of r_A(t - L) and r_B(t) over the n hours where both exist

An estimate needs n >= `min_observations` (60 by default: about three days of a 24/7 pair,
or two to three weeks for a US-session follower at the lags its sessions overlap). It is
significant when |corr| > max(significance_z / sqrt(n), min_abs_corr): under no relation
corr is about N(0, 1/n), and with ~100 (pair, lag) tests a z of 3.5 leaves about one chance
in twenty of a spurious one. Per (leader, follower) only the most significant lag is kept.

Prediction. A relation r_B(t) ~ rho r_A(t - L) projects A's move over the last L hours onto
B's next L hours. In units of each asset's hourly volatility:

    z_A = log(p_A(now) / p_A(now - L)) / (sigma_A sqrt(k)),   c = rho z_A

with k the hours A traded in that span. A follower's expected move S is the mean of its
relations' c; its signal scores tanh(S), with confidence min(1, mean(|rho| sqrt(n)) /
(2 significance_z)): an estimate twice as significant as the bar is full evidence.

Modifiers on the other strategies' signals of each follower, in [0.5, 1.5]:

    graph    = 1 + 0.5 strength (2 agreement - 1),   strength = tanh(mean |c|),
               agreement = |sum c| / sum |c|
    risk-off = 1 + 0.5 I for havens (TLT, GLD), 1 - 0.5 I for the others
    multiplier = clamp(graph x risk-off)

Leaders that moved hard and agree put the follower in play: views on it count more. Leaders
that moved hard against each other make its next move a tug of war: views on it count less.
I = (indicators + regime stress) / 4 is the risk-off intensity; the indicators, over the
last `risk_off_lookback_hours`: credit (HYG `hyg_drawdown` below its high, or the HY spread's
latest value `spread_widening` above the one before), fear (VIXY up `vixy_rise`, or VIX's
latest value `vix_rise` above the one before) and equities (SPY down `spy_drop`); regime
stress is a CRASH or HIGH_VOL reading. Risk-off is all three indicators or regime stress:
then it signals and proposes BUY `risk_off_symbol` (TLT), the flight to quality.

Timeframes. Lead-lag over hours needs hourly bars or finer. On coarser bars (a daily
backtest) only the risk-off view runs: every move is taken between bar closes (a daily bar
closes with its session), the lookback reaching back at least to the last close before it,
and the haven's stop is sized from the daily bars' own volatility.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.calendar import Timeframe
from core.config import CrossAssetParams
from core.signals import MAX_MULTIPLIER, MIN_MULTIPLIER, Modifier
from core.snapshot import (
    EMPTY_BARS,
    MICROSECOND,
    BarArrays,
    IntArray,
    MarketSnapshot,
    micros,
    micros_of,
    split_bars,
)
from core.types import Regime, RegimeReading, Side, Signal, TradeProposal
from strategies.base import BarNeeds, StrategyContext, StrategyOutput, missing_inputs
from strategies.common import bracket

FloatArray = NDArray[np.float64]

NAME = "cross_asset"
DEFAULTS = CrossAssetParams()
HOUR = timedelta(hours=1)
HOUR_MICROS = HOUR // MICROSECOND
STRESS_REGIMES = frozenset({Regime.CRASH, Regime.HIGH_VOL})
RISK_OFF_INDICATORS = 3
# Read for the risk-off indicators, traded or not.
# Below this many hourly returns a volatility estimate is noise: the widest stop is used.
MIN_VOLATILITY_RETURNS = 10
# A variance this small is a flat series: no correlation is defined.
FLAT_VARIANCE = 1e-18


@dataclass(frozen=True, slots=True)
class LeadLag:
    """r_follower(t) correlates with r_leader(t - lag_hours) over `observations` hours."""

    leader: str
    follower: str
    lag_hours: int
    correlation: float
    observations: int

    @property
    def t_score(self) -> float:
        return abs(self.correlation) * math.sqrt(self.observations)


@dataclass(frozen=True, slots=True)
class RiskOff:
    indicators: tuple[str, ...]  # which of credit, fear, equities confirm
    regime_stress: bool

    @property
    def intensity(self) -> float:
        return (len(self.indicators) + self.regime_stress) / (RISK_OFF_INDICATORS + 1)

    @property
    def active(self) -> bool:
        return self.regime_stress or len(self.indicators) == RISK_OFF_INDICATORS


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hourly_returns(bars: pl.DataFrame, symbols: Sequence[str], start: datetime, end: datetime) -> FloatArray:
    """Log returns, one row per hour of [floor(start), floor(end)) and one column per symbol.

    Row h holds the return from the close of the symbol's previous traded hour to the close
    of hour h; NaN where the symbol did not trade in hour h (or had traded no hour before).
    """
    split = split_bars(bars)
    return hourly_grid([split.arrays.get((symbol, "1Min"), EMPTY_BARS) for symbol in symbols], start, end)


def hourly_grid(series: Sequence[BarArrays], start: datetime, end: datetime) -> FloatArray:
    """`hourly_returns` of each symbol's minute bars, one column per series."""
    grid_start, grid_end = floor_hour(start), floor_hour(end)
    hours = max(0, (grid_end - grid_start) // HOUR)
    returns = np.full((hours, len(series)), np.nan)
    if hours == 0:
        return returns
    origin = micros(grid_start)
    window = np.array([origin, micros(grid_end)])
    for column, bars in enumerate(series):
        first, stop = np.searchsorted(bars.ts, window).tolist()  # the bars opened in [grid_start, grid_end)
        stamps, closes = hourly_closes(bars.rows(first, stop))
        if closes.size < 2:
            continue
        returns[(stamps[1:] - origin) // HOUR_MICROS, column] = np.diff(np.log(closes))
    return returns


def hourly_closes(bars: BarArrays) -> tuple[IntArray, FloatArray]:
    """The start and the last close of every UTC hour the bars trade in, as `resample(bars, HOUR)`
    stamps and closes them: a binary search per hour finds its last bar, where resampling
    would pass over every minute bar of the window (weeks of them) each cycle."""
    if not bars.size:
        return bars.ts, bars.close
    # Every hour from the first bar's to the one after the last bar's, and how many bars open before each.
    starts = np.arange(int(bars.ts[0]) // HOUR_MICROS, int(bars.ts[-1]) // HOUR_MICROS + 2) * HOUR_MICROS
    before = np.searchsorted(bars.ts, starts)
    traded = np.flatnonzero(before[1:] > before[:-1])
    return starts[traded], bars.close[before[traded + 1] - 1]


def estimate_lead_lag(
    returns: FloatArray,
    names: Sequence[str],
    lags: Sequence[int],
    followers: Sequence[str],
    *,
    significance_z: float,
    min_abs_corr: float,
    min_observations: int,
) -> tuple[LeadLag, ...]:
    """The most significant lag of every significant (leader, follower) pair, sorted by pair.

    `returns` is hours x names with NaN for missing hours. Pairwise-complete sums give every
    (leader, follower) correlation at one lag in a few matrix products.
    """
    observed = np.isfinite(returns)
    values = np.where(observed, returns, 0.0)
    present = observed.astype(np.float64)
    follower_columns = [names.index(name) for name in followers if name in names]
    best: dict[tuple[int, int], LeadLag] = {}
    for lag in sorted(lags):
        if lag <= 0 or lag >= returns.shape[0]:
            continue
        x, x_present = values[:-lag], present[:-lag]  # the leader at t - lag
        y, y_present = values[lag:], present[lag:]  # the follower at t
        n = x_present.T @ y_present
        sum_x, sum_y = x.T @ y_present, x_present.T @ y
        sum_xx, sum_yy, sum_xy = (x * x).T @ y_present, x_present.T @ (y * y), x.T @ y
        covariance = n * sum_xy - sum_x * sum_y
        variance_x = n * sum_xx - sum_x**2
        variance_y = n * sum_yy - sum_y**2
        for j in follower_columns:
            for i in range(len(names)):
                count = int(n[i, j])
                if i == j or count < min_observations:
                    continue
                if variance_x[i, j] <= FLAT_VARIANCE * count**2 or variance_y[i, j] <= FLAT_VARIANCE * count**2:
                    continue
                correlation = float(covariance[i, j] / math.sqrt(variance_x[i, j] * variance_y[i, j]))
                if abs(correlation) <= max(significance_z / math.sqrt(count), min_abs_corr):
                    continue
                relation = LeadLag(names[i], names[j], lag, correlation, count)
                current = best.get((i, j))
                if current is None or relation.t_score > current.t_score:
                    best[(i, j)] = relation
    return tuple(sorted(best.values(), key=lambda r: (r.follower, r.leader)))


# The estimate changes only when an hour completes, and the engine decides every minute: the
# latest few are kept, keyed by the exact bytes of the returns and every other argument, so a
# hit returns exactly what computing again would. Each key holds one returns matrix (~100 KB).
@functools.lru_cache(maxsize=4)
def _lead_lag_of_content(
    content: bytes,
    shape: tuple[int, ...],
    names: tuple[str, ...],
    lags: tuple[int, ...],
    followers: tuple[str, ...],
    significance_z: float,
    min_abs_corr: float,
    min_observations: int,
) -> tuple[LeadLag, ...]:
    return estimate_lead_lag(
        np.frombuffer(content).reshape(shape),
        names,
        lags,
        followers,
        significance_z=significance_z,
        min_abs_corr=min_abs_corr,
        min_observations=min_observations,
    )


def _closes_since(snapshot: MarketSnapshot, symbol: str, since: datetime, now: datetime) -> FloatArray:
    """The closes of the bars that closed after `since` and by `now`, after the last close known at
    `since`: a move over the span runs from its first value to its last, whatever the timeframe."""
    closed = snapshot.closed_bars(symbol, now)
    return closed.close[max(snapshot.closed_bars(symbol, since).size - 1, 0) :]


def _move(snapshot: MarketSnapshot, symbol: str, since: datetime, now: datetime) -> float | None:
    closes = _closes_since(snapshot, symbol, since, now)
    return None if closes.size < 2 else float(closes[-1] / closes[0]) - 1.0


def _series_change(snapshot: MarketSnapshot, name: str, now: datetime) -> tuple[float, float] | None:
    """(previous, latest) values of a market series known at now."""
    if snapshot.table("market_series").is_empty():
        return None
    ts, values = snapshot.from_table("market_series", ("history", name), lambda frame: _series_history(frame, name))
    known = bisect.bisect_right(ts, micros(now))
    return None if known < 2 else (values[known - 2], values[known - 1])


def _series_history(frame: pl.DataFrame, name: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A market series' times and values, oldest first (rows of one time in table order).

    The table holds a few values a day per series: numpy compares its text faster than a polars
    expression starts, and a live cycle reads a frame of its own, so that start is paid each time.
    """
    rows = np.flatnonzero(frame.get_column("series").to_numpy() == name)
    ts = micros_of(frame.get_column("ts_event"))[rows]
    order = np.argsort(ts, kind="stable")
    return tuple(ts[order].tolist()), tuple(frame.get_column("value").to_numpy()[rows][order].tolist())


def risk_off(snapshot: MarketSnapshot, now: datetime, regime: RegimeReading, params: CrossAssetParams) -> RiskOff:
    """Which stress indicators fire over the lookback (see the module docstring)."""
    since = now - timedelta(hours=params.risk_off_lookback_hours)
    indicators: list[str] = []

    credit = _closes_since(snapshot, "HYG", since, now)
    hyg_drawdown = float(credit[-1] / credit.max()) - 1.0 if credit.size else 0.0
    spread = _series_change(snapshot, params.credit_series, now)
    if hyg_drawdown <= -params.hyg_drawdown or (spread is not None and spread[1] - spread[0] >= params.spread_widening):
        indicators.append("credit")

    vixy = _move(snapshot, "VIXY", since, now)
    vix = _series_change(snapshot, params.vol_series, now)
    if (vixy is not None and vixy >= params.vixy_rise) or (
        vix is not None and vix[0] > 0 and vix[1] / vix[0] - 1.0 >= params.vix_rise
    ):
        indicators.append("fear")

    spy = _move(snapshot, "SPY", since, now)
    if spy is not None and spy <= -params.spy_drop:
        indicators.append("equities")
    return RiskOff(tuple(indicators), regime.regime in STRESS_REGIMES)


def _daily_bars_volatility(bars: BarArrays) -> float | None:
    """Std of the last daily bars' log returns: the daily volatility on a cycle of daily bars."""
    closes = bars.close[-(MIN_VOLATILITY_RETURNS + 1) :]
    return float(np.diff(np.log(closes)).std(ddof=1)) if closes.size > MIN_VOLATILITY_RETURNS else None


def hourly_volatility(hourly: FloatArray) -> float | None:
    """Std of an asset's hourly returns where it traded; None below two of them."""
    observed = hourly[np.isfinite(hourly)]
    return float(observed.std(ddof=1)) if observed.size >= 2 else None


def daily_volatility(hourly: FloatArray) -> float | None:
    """Std of an asset's hourly returns, scaled to a calendar day by the hours a day it trades,
    counted from its first return on the grid."""
    observed = np.flatnonzero(np.isfinite(hourly))
    if observed.size <= MIN_VOLATILITY_RETURNS:
        return None
    span_days = (hourly.size - observed[0]) / 24
    return float(hourly[observed].std(ddof=1) * math.sqrt(observed.size / span_days))


class CrossAssetGraph:
    name: ClassVar[str] = NAME
    # Configuration may narrow these, not widen them: a proposal's symbol must be listed here.
    symbols: ClassVar[tuple[str, ...]] = DEFAULTS.symbols
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    # VIX and the HY spread (market_series) are read when present: VIXY and HYG's bars are the
    # same gauges in prices, so a world of prices alone still has its risk-off view.
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"bars": timedelta(minutes=10)})
    overrides_regime: ClassVar[bool] = False
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.DAY_1

    def bar_needs(self, params: CrossAssetParams) -> BarNeeds:
        traded = [s for s in (*params.symbols, params.risk_off_symbol) if s in self.symbols]
        # risk_off reads its gauges whether they are traded or not.
        return BarNeeds(traded=tuple(dict.fromkeys(traded)), optional=(*params.proxies, "SPY", "HYG", "VIXY"))

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        reason = missing_inputs(self, context.snapshot)
        if reason is not None:
            return StrategyOutput.abstain(reason)
        params: CrossAssetParams = context.params
        now = context.now
        followers = [s for s in params.symbols if s in self.symbols]
        haven = params.risk_off_symbol if params.risk_off_symbol in self.symbols else None
        names = list(dict.fromkeys([*followers, *params.proxies, *([haven] if haven else [])]))
        snapshot = context.snapshot
        returns = hourly_grid(
            [snapshot.bar_arrays(name) for name in names], now - timedelta(days=params.estimation_days), now
        )
        lags = range(math.ceil(params.lag_hours[0]), math.floor(params.lag_hours[1]) + 1)
        # Lead-lag over hours needs hourly bars or finer; on coarser bars only the risk-off view runs.
        relations = (
            _lead_lag_of_content(
                returns.tobytes(),
                returns.shape,
                tuple(names),
                tuple(lags),
                tuple(followers),
                params.significance_z,
                params.min_abs_corr,
                params.min_observations,
            )
            if snapshot.timeframe.length <= HOUR
            else ()
        )
        stress = risk_off(snapshot, now, context.regime, params)

        signals: list[Signal] = []
        modifiers: list[Modifier] = []
        # A leader of several followers scales each of their contributions by the same volatility.
        leader_volatility = {
            leader: hourly_volatility(returns[:, names.index(leader)]) for leader in {r.leader for r in relations}
        }
        for follower in followers:
            own = [r for r in relations if r.follower == follower]
            contributions = [
                self._contribution(r, snapshot, returns[:, names.index(r.leader)], leader_volatility[r.leader], now)
                for r in own
            ]
            graph = 1.0
            notes: list[str] = []
            if contributions:
                expected = float(np.mean(contributions))
                gross = float(np.sum(np.abs(contributions)))
                strength = math.tanh(gross / len(contributions))
                agreement = abs(float(np.sum(contributions))) / gross if gross > 0 else 0.0
                graph = 1.0 + (MAX_MULTIPLIER - 1.0) * strength * (2.0 * agreement - 1.0)
                notes.append(
                    ", ".join(f"{r.leader} {r.lag_hours}h corr {r.correlation:+.2f} (n={r.observations})" for r in own)
                )
                score = math.tanh(expected)
                if abs(score) >= params.min_signal_score:
                    evidence = float(np.mean([r.t_score for r in own])) / (2.0 * params.significance_z)
                    signals.append(
                        Signal(NAME, follower, score, min(1.0, evidence), "lead-lag", now, HOUR * params.lag_hours[0])
                    )
            tilt = (MAX_MULTIPLIER - 1.0) * stress.intensity
            shelter = 1.0 + tilt if follower in params.havens else 1.0 - tilt
            if stress.intensity:
                notes.append(f"risk-off intensity {stress.intensity:.2f} ({', '.join(stress.indicators) or 'regime'})")
            multiplier = min(max(graph * shelter, MIN_MULTIPLIER), MAX_MULTIPLIER)
            if abs(multiplier - 1.0) >= params.min_modifier_effect:
                modifiers.append(
                    Modifier(
                        NAME,
                        follower,
                        multiplier,
                        now,
                        timedelta(hours=params.modifier_half_life_hours),
                        reason="; ".join(notes),
                    )
                )

        proposals: list[TradeProposal] = []
        if stress.active and haven is not None:
            confidence = 0.3 + 0.6 * stress.intensity
            signal = Signal(NAME, haven, stress.intensity, confidence, "risk-off", now, HOUR * params.lag_hours[0])
            signals.append(signal)
            volatility = (
                daily_volatility(returns[:, names.index(haven)])
                if snapshot.timeframe.intraday
                else _daily_bars_volatility(snapshot.closed_bars(haven, now))
            )
            proposal = self._flight_to_quality(context, volatility, signal, stress)
            if proposal is not None:
                proposals.append(proposal)
        return StrategyOutput(signals=tuple(signals), proposals=tuple(proposals), modifiers=tuple(modifiers))

    @staticmethod
    def _contribution(
        relation: LeadLag, snapshot: MarketSnapshot, hourly: FloatArray, volatility: float | None, now: datetime
    ) -> float:
        """rho x the leader's move over the last lag hours, in units of its hourly volatility."""
        move = _move(snapshot, relation.leader, now - relation.lag_hours * HOUR, now)
        if move is None or move <= -1.0 or volatility is None:
            return 0.0
        traded = max(1, int(np.isfinite(hourly[-relation.lag_hours :]).sum()))
        return relation.correlation * math.log1p(move) / (volatility * math.sqrt(traded)) if volatility > 0 else 0.0

    @staticmethod
    def _flight_to_quality(
        context: StrategyContext, volatility: float | None, signal: Signal, stress: RiskOff
    ) -> TradeProposal | None:
        params: CrossAssetParams = context.params
        now, symbol, snapshot = context.now, signal.symbol, context.snapshot
        age = snapshot.quote_age(symbol, now)
        if age is None or (symbol, Side.BUY) in context.entered:
            return None
        if age > timedelta(minutes=params.max_quote_age_minutes):
            return None
        price = float(snapshot.closed_bars(symbol, now).close[-1])
        stop_fraction = (
            params.max_stop_pct
            if volatility is None
            else min(max(params.stop_daily_vols * volatility, params.min_stop_pct), params.max_stop_pct)
        )
        return bracket(
            strategy=NAME,
            symbol=symbol,
            side=Side.BUY,
            entry=price,
            risk=price * stop_fraction,
            reward_risk=params.reward_risk,
            horizon=HOUR * params.lag_hours[1],
            confidence=signal.confidence,
            signal_ids=(signal.signal_id,),
            now=now,
            reason=(
                f"risk-off (intensity {stress.intensity:.2f}: {', '.join(stress.indicators) or 'no indicator'}; "
                f"regime {context.regime.regime.value}): flight to quality"
            ),
        )
