"""Strategy weights and reliabilities that follow each strategy's recent closed trades.

Public API
----------
``AdaptationParams``      frozen tuning knobs with defaults (below).
``StrategyPerformance``   one strategy's weight, its last ``window`` realized R multiples
                          and their ``TradeStats`` (the input Kelly sizing uses).
``WeightUpdate``          one row for ``strategy_weights``.

``initial_performance(strategy, params=DEFAULT_ADAPTATION) -> StrategyPerformance``
``target_weight(stats, params) -> float``
``record_trade(performance, realized_r, ts, params=DEFAULT_ADAPTATION)
    -> tuple[StrategyPerformance, WeightUpdate]``
``reliability(stats, params=DEFAULT_ADAPTATION) -> float``
``weights(performances) -> dict[str, float]``
``reliabilities(performances, params=DEFAULT_ADAPTATION) -> dict[str, float]``

Formulas
--------
Over the last ``window`` (30) closed trades of a strategy, with mean R the average
realized R multiple (its expectancy in units of initial risk)::

    target = clamp(base x (1 + sensitivity x mean_R), min_weight, max_weight)
    weight <- weight + smoothing x (target - weight)

With fewer than ``min_trades`` (5) trades the target is ``base``: no evidence yet. With
the default smoothing 0.1 one trade moves the weight a tenth of the way to its target,
so one outlier moves it little. A weight starts at ``base`` (1.0) and, being an average
of values inside ``[min_weight, max_weight]`` ([0.25, 2.0]), never leaves that range.

Reliability, the hit rate that weights the strategy's signals, is the posterior mean of
the window's win rate under a prior of ``reliability_prior`` (0.5) worth
``reliability_prior_trades`` (10) trades::

    reliability = (wins + prior x prior_trades) / (n + prior_trades)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.sizing import TradeStats
from core.types import ContractError


@dataclass(frozen=True, slots=True)
class AdaptationParams:
    window: int = 30
    min_trades: int = 5
    base_weight: float = 1.0
    min_weight: float = 0.25
    max_weight: float = 2.0
    sensitivity: float = 1.0
    smoothing: float = 0.1
    reliability_prior: float = 0.5
    reliability_prior_trades: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_trades <= self.window:
            raise ContractError("adaptation: needs 1 <= min_trades <= window")
        if not 0.0 < self.min_weight <= self.base_weight <= self.max_weight:
            raise ContractError("adaptation: needs 0 < min_weight <= base_weight <= max_weight")
        if not 0.0 < self.smoothing <= 1.0:
            raise ContractError("adaptation: smoothing must be in (0, 1]")
        if self.sensitivity < 0.0:
            raise ContractError("adaptation: sensitivity must be >= 0")
        if not (0.0 <= self.reliability_prior <= 1.0 and self.reliability_prior_trades > 0.0):
            raise ContractError("adaptation: reliability prior must be a rate in [0, 1] with a positive weight")


DEFAULT_ADAPTATION = AdaptationParams()


@dataclass(frozen=True, slots=True)
class StrategyPerformance:
    strategy: str
    weight: float
    recent_r: tuple[float, ...] = ()  # oldest first, at most params.window
    stats: TradeStats = field(default_factory=TradeStats)  # of recent_r, kept to size without recounting
    n_total: int = 0


@dataclass(frozen=True, slots=True)
class WeightUpdate:
    strategy: str
    ts_event: datetime
    weight: float
    win_rate: float | None
    avg_rr: float | None  # realized reward:risk = average win R / average loss R
    n_trades: int  # trades in the window behind win_rate and avg_rr


def initial_performance(strategy: str, params: AdaptationParams = DEFAULT_ADAPTATION) -> StrategyPerformance:
    return StrategyPerformance(strategy=strategy, weight=params.base_weight)


def _bounded(weight: float, params: AdaptationParams) -> float:
    return min(params.max_weight, max(params.min_weight, weight))


def target_weight(stats: TradeStats, params: AdaptationParams) -> float:
    mean_r = stats.mean_r
    if mean_r is None or stats.n_trades < params.min_trades:
        return params.base_weight
    return _bounded(params.base_weight * (1.0 + params.sensitivity * mean_r), params)


def record_trade(
    performance: StrategyPerformance,
    realized_r: float,
    ts: datetime,
    params: AdaptationParams = DEFAULT_ADAPTATION,
) -> tuple[StrategyPerformance, WeightUpdate]:
    recent = (*performance.recent_r, realized_r)[-params.window :]
    stats = TradeStats.from_r_multiples(recent)
    # The smoothed value is a convex combination of two bounded weights; bounding it
    # again only absorbs the rounding that could push it an ulp outside.
    weight = _bounded(
        performance.weight + params.smoothing * (target_weight(stats, params) - performance.weight),
        params,
    )
    updated = StrategyPerformance(
        strategy=performance.strategy,
        weight=weight,
        recent_r=recent,
        stats=stats,
        n_total=performance.n_total + 1,
    )
    row = WeightUpdate(
        strategy=performance.strategy,
        ts_event=ts,
        weight=weight,
        win_rate=stats.win_rate,
        avg_rr=stats.payoff,
        n_trades=stats.n_trades,
    )
    return updated, row


def reliability(stats: TradeStats, params: AdaptationParams = DEFAULT_ADAPTATION) -> float:
    prior_wins = params.reliability_prior * params.reliability_prior_trades
    return (stats.n_wins + prior_wins) / (stats.n_trades + params.reliability_prior_trades)


def weights(performances: Iterable[StrategyPerformance]) -> dict[str, float]:
    return {p.strategy: p.weight for p in performances}


def reliabilities(
    performances: Iterable[StrategyPerformance],
    params: AdaptationParams = DEFAULT_ADAPTATION,
) -> dict[str, float]:
    return {p.strategy: reliability(p.stats, params) for p in performances}
