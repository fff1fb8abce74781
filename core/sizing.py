"""Position sizing: fractional Kelly on the strategy's measured edge, scaled by volatility.

Public API
----------
``TradeStats.from_r_multiples(r_multiples) -> TradeStats``
    Win/loss statistics of closed trades measured in R (P&L / initial risk). A trade
    with R > 0 is a win, R < 0 a loss, R == 0 a scratch (counted, neither).
    Properties ``win_rate``, ``payoff`` (average win R / average loss R) and ``mean_r``
    are ``None`` while undefined.

``SizingParams(prior_win_rate=0.5, prior_trades=30, vol_scale_cap=2.0)``

``blended_edge(stats, prior_payoff, params) -> tuple[float, float]``
    The win probability p and payoff b Kelly uses (formula below).

``kelly_fraction(win_rate, payoff, multiplier) -> float``
    ``(b p - q) / b x multiplier``; zero or negative means no edge.

``vol_scale(realized_vol, target_vol, cap) -> float``
    ``min(cap, target_vol / realized_vol)``; 1.0 when the volatility is unknown.

``size(proposal, equity, stats, realized_vol, config, params) -> Sizing``
    ``Sizing(kelly_fraction, vol_scale, qty)``, before the hard limits.

Conventions
-----------
The prior: until a strategy has ``prior_trades`` closed trades, its measured win rate
and payoff are blended with a prior (p0 = ``prior_win_rate``, b0 = the proposal's own
planned reward:risk) whose weight fades linearly with the number of trades n::

    w = max(0, 1 - n / prior_trades)
    p = w p0 + (1 - w) p_measured
    b = w b0 + (1 - w) b_measured

A measured value that is undefined (no trades; no losses yet, so no payoff) is replaced
by its prior. Measured payoffs are in R, so a strategy's trades of different sizes
compare.

The fraction is of equity put AT RISK, i.e. lost if the stop is hit, not of equity
invested::

    qty = equity x kelly_fraction x vol_scale / |entry - stop|

``realized_vol`` and ``RiskConfig.target_volatility`` are both daily return standard
deviations. The hard limits (risk manager) cap the result afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from core.config import RiskConfig
from core.types import ContractError, TradeProposal


@dataclass(frozen=True, slots=True)
class TradeStats:
    n_trades: int = 0
    n_wins: int = 0
    n_losses: int = 0
    avg_win_r: float = 0.0
    avg_loss_r: float = 0.0  # a magnitude: 1.0 means the average loss was one R

    @classmethod
    def from_r_multiples(cls, r_multiples: Iterable[float]) -> TradeStats:
        n = wins = losses = 0
        win_sum = loss_sum = 0.0
        for r in r_multiples:
            n += 1
            if r > 0:
                wins += 1
                win_sum += r
            elif r < 0:
                losses += 1
                loss_sum -= r
        return cls(
            n_trades=n,
            n_wins=wins,
            n_losses=losses,
            avg_win_r=win_sum / wins if wins else 0.0,
            avg_loss_r=loss_sum / losses if losses else 0.0,
        )

    @property
    def win_rate(self) -> float | None:
        return self.n_wins / self.n_trades if self.n_trades else None

    @property
    def payoff(self) -> float | None:
        if self.n_wins == 0 or self.n_losses == 0:
            return None
        return self.avg_win_r / self.avg_loss_r

    @property
    def mean_r(self) -> float | None:
        if self.n_trades == 0:
            return None
        return (self.n_wins * self.avg_win_r - self.n_losses * self.avg_loss_r) / self.n_trades


@dataclass(frozen=True, slots=True)
class SizingParams:
    prior_win_rate: float = 0.5
    prior_trades: int = 30
    vol_scale_cap: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.prior_win_rate < 1.0:
            raise ContractError(f"sizing: prior_win_rate {self.prior_win_rate} outside (0, 1)")
        if self.prior_trades < 1:
            raise ContractError(f"sizing: prior_trades {self.prior_trades} must be >= 1")
        if not 0.0 < self.vol_scale_cap < math.inf:
            raise ContractError(f"sizing: vol_scale_cap {self.vol_scale_cap} must be positive")


@dataclass(frozen=True, slots=True)
class Sizing:
    kelly_fraction: float
    vol_scale: float
    qty: float  # 0.0 when the Kelly fraction is not positive


def blended_edge(stats: TradeStats, prior_payoff: float, params: SizingParams) -> tuple[float, float]:
    prior_weight = max(0.0, 1.0 - stats.n_trades / params.prior_trades)
    measured_p = stats.win_rate
    measured_b = stats.payoff
    p0 = params.prior_win_rate
    p = p0 if measured_p is None else prior_weight * p0 + (1.0 - prior_weight) * measured_p
    b = prior_payoff if measured_b is None else prior_weight * prior_payoff + (1.0 - prior_weight) * measured_b
    return p, b


def kelly_fraction(win_rate: float, payoff: float, multiplier: float) -> float:
    return (payoff * win_rate - (1.0 - win_rate)) / payoff * multiplier


def vol_scale(realized_vol: float | None, target_vol: float, cap: float) -> float:
    # Without a usable volatility estimate there is no evidence to scale either way.
    if realized_vol is None or not 0.0 < realized_vol < math.inf:
        return 1.0
    return min(cap, target_vol / realized_vol)


def size(
    proposal: TradeProposal,
    equity: float,
    stats: TradeStats,
    realized_vol: float | None,
    config: RiskConfig,
    params: SizingParams,
) -> Sizing:
    p, b = blended_edge(stats, proposal.reward_risk, params)
    fraction = kelly_fraction(p, b, config.kelly_multiplier)
    scale = vol_scale(realized_vol, config.target_volatility, params.vol_scale_cap)
    if fraction <= 0.0 or equity <= 0.0:
        return Sizing(kelly_fraction=fraction, vol_scale=scale, qty=0.0)
    return Sizing(kelly_fraction=fraction, vol_scale=scale, qty=equity * fraction * scale / proposal.risk_per_unit)
