"""Signal aggregation: many strategies' views of a symbol become one score and confidence.

A signal's weight is its strategy's measured reliability, halved every `half_life` of its
age, times the cross-asset multiplier in force for its symbol:

    weight = reliability x 0.5 ** (age / half_life) x multiplier

Per symbol, the score is the average of the signals' scores weighted by weight x confidence,
and the confidence is sum(weight x confidence) / max(1, sum(weight)): weights are evidence,
so below a total weight of 1 a stale, dampened or unreliable view gives less confidence,
and above it the confidence is the weighted average of the signals' own. Confidence measures
the evidence and the score its direction: opposing views cancel in the score, not in the
confidence.

Cross-asset modifiers (strategy 5) scale the weights of the *other* strategies' signals on
one symbol, within [MIN_MULTIPLIER, MAX_MULTIPLIER]. They fade towards 1 with age like a
signal's weight fades towards 0, and several on one symbol multiply, the product clamped
to the same bounds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.types import ContractError, Signal

MIN_MULTIPLIER = 0.5
MAX_MULTIPLIER = 1.5
DEFAULT_RELIABILITY = 0.5
DEFAULT_MIN_WEIGHT = 0.05


def _check_utc(ts: datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() != timedelta(0):
        raise ContractError(f"{what} must be UTC-aware")


def decay_factor(age: timedelta, half_life: timedelta) -> float:
    """0.5 ** (age / half_life); a negative age means a view from the future, which is refused."""
    if age < timedelta(0):
        raise ContractError(f"age {age} is negative: a signal from the future")
    return math.pow(0.5, age / half_life)


@dataclass(frozen=True, slots=True)
class Modifier:
    """A strategy's multiplier on the other strategies' signal weights for one symbol."""

    strategy: str
    symbol: str
    multiplier: float
    ts_event: datetime
    half_life: timedelta
    reason: str = ""

    def __post_init__(self) -> None:
        name = f"modifier {self.strategy}/{self.symbol}"
        if not (math.isfinite(self.multiplier) and MIN_MULTIPLIER <= self.multiplier <= MAX_MULTIPLIER):
            raise ContractError(f"{name}: multiplier {self.multiplier} outside [{MIN_MULTIPLIER}, {MAX_MULTIPLIER}]")
        if self.half_life <= timedelta(0):
            raise ContractError(f"{name}: half_life must be positive")
        _check_utc(self.ts_event, f"{name}: ts_event")

    def multiplier_at(self, now: datetime) -> float:
        return 1.0 + (self.multiplier - 1.0) * decay_factor(now - self.ts_event, self.half_life)


@dataclass(frozen=True, slots=True)
class AggregatedSignal:
    """The combined view of one symbol, with the signals that made it and their weights."""

    symbol: str
    score: float
    confidence: float
    signal_ids: tuple[str, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        name = f"aggregated signal {self.symbol}"
        if not (math.isfinite(self.score) and -1.0 <= self.score <= 1.0):
            raise ContractError(f"{name}: score {self.score} outside [-1, 1]")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ContractError(f"{name}: confidence {self.confidence} outside [0, 1]")
        if not self.signal_ids or len(self.signal_ids) != len(self.weights):
            raise ContractError(f"{name}: needs one weight per contributing signal, and at least one signal")


def modifier_multiplier(modifiers: Iterable[Modifier], symbol: str, strategy: str, now: datetime) -> float:
    """Combined multiplier for `strategy`'s signals on `symbol`; a strategy's own modifiers do not apply to it."""
    product = 1.0
    for modifier in modifiers:
        if modifier.symbol == symbol and modifier.strategy != strategy:
            product *= modifier.multiplier_at(now)
    return min(max(product, MIN_MULTIPLIER), MAX_MULTIPLIER)


def signal_weight(signal: Signal, now: datetime, reliability: float, multiplier: float = 1.0) -> float:
    if not (math.isfinite(reliability) and 0.0 <= reliability <= 1.0):
        raise ContractError(f"reliability of {signal.strategy} is {reliability}, outside [0, 1]")
    return reliability * decay_factor(now - signal.ts_event, signal.half_life) * multiplier


def aggregate_signals(
    signals: Iterable[Signal],
    now: datetime,
    reliability: Mapping[str, float] | None = None,
    modifiers: Iterable[Modifier] = (),
    *,
    default_reliability: float = DEFAULT_RELIABILITY,
    min_weight: float = DEFAULT_MIN_WEIGHT,
) -> tuple[AggregatedSignal, ...]:
    """One AggregatedSignal per symbol with a signal of at least `min_weight`, ordered by symbol.

    `reliability` maps a strategy to its measured hit rate; strategies without one get
    `default_reliability`. A signal or modifier dated after `now` is a ContractError.
    """
    _check_utc(now, "aggregate_signals: now")
    reliability = reliability or {}
    modifiers = tuple(modifiers)
    for modifier in modifiers:
        if modifier.ts_event > now:
            raise ContractError(
                f"modifier {modifier.strategy}/{modifier.symbol} is dated after now ({now.isoformat()})"
            )

    by_symbol: dict[str, list[tuple[Signal, float]]] = defaultdict(list)
    for signal in signals:
        if signal.ts_event > now:
            raise ContractError(f"signal {signal.signal_id} is dated after now ({now.isoformat()})")
        multiplier = modifier_multiplier(modifiers, signal.symbol, signal.strategy, now)
        weight = signal_weight(signal, now, reliability.get(signal.strategy, default_reliability), multiplier)
        if weight >= min_weight:
            by_symbol[signal.symbol].append((signal, weight))

    aggregated = []
    for symbol in sorted(by_symbol):
        contributions = sorted(by_symbol[symbol], key=lambda item: (item[0].signal_id, item[0].score, item[1]))
        evidence = sum(weight * signal.confidence for signal, weight in contributions)
        total_weight = sum(weight for _, weight in contributions)
        score = (
            sum(weight * signal.confidence * signal.score for signal, weight in contributions) / evidence
            if evidence
            else 0.0
        )
        aggregated.append(
            AggregatedSignal(
                symbol=symbol,
                # Rounding can carry a unanimous average a hair past the bounds the contract checks.
                score=min(max(score, -1.0), 1.0),
                confidence=min(evidence / max(1.0, total_weight), 1.0),
                signal_ids=tuple(signal.signal_id for signal, _ in contributions),
                weights=tuple(weight for _, weight in contributions),
            )
        )
    return tuple(aggregated)
