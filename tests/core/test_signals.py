import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from core.signals import (
    MAX_MULTIPLIER,
    MIN_MULTIPLIER,
    AggregatedSignal,
    Modifier,
    aggregate_signals,
    decay_factor,
    modifier_multiplier,
    signal_weight,
)
from core.types import ContractError, Signal

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def signal(
    strategy: str = "macro_event",
    symbol: str = "SPY",
    score: float = 1.0,
    confidence: float = 1.0,
    age: timedelta = timedelta(0),
    half_life: timedelta = HOUR,
    source: str = "test",
) -> Signal:
    return Signal(strategy, symbol, score, confidence, source, NOW - age, half_life)


def modifier(multiplier: float, symbol: str = "SPY", age: timedelta = timedelta(0)) -> Modifier:
    return Modifier("cross_asset", symbol, multiplier, NOW - age, HOUR, reason="test")


def only(aggregated: tuple[AggregatedSignal, ...]) -> AggregatedSignal:
    assert len(aggregated) == 1
    return aggregated[0]


def test_decay_halves_every_half_life() -> None:
    assert decay_factor(timedelta(0), HOUR) == 1.0
    assert decay_factor(2 * HOUR, HOUR) == 0.25
    assert decay_factor(90 * timedelta(minutes=1), HOUR) == pytest.approx(2**-1.5)
    assert signal_weight(signal(age=2 * HOUR), NOW, reliability=0.8) == pytest.approx(0.2)
    assert signal_weight(signal(age=HOUR), NOW, reliability=0.8, multiplier=1.5) == pytest.approx(0.6)


def test_combination_by_hand() -> None:
    # weights 0.8 and 0.4 x 0.5 = 0.2; evidence (weight x confidence) 0.4 and 0.2
    bull = signal("macro_event", score=1.0, confidence=0.5)
    bear = signal("precious_metals", score=-0.5, confidence=1.0, age=HOUR)
    result = only(aggregate_signals([bull, bear], NOW, {"macro_event": 0.8, "precious_metals": 0.4}))
    assert result.score == pytest.approx((0.4 * 1.0 + 0.2 * -0.5) / 0.6)
    assert result.confidence == pytest.approx(0.6 / max(1.0, 0.8 + 0.2))
    assert dict(zip(result.signal_ids, result.weights, strict=True)) == pytest.approx(
        {bull.signal_id: 0.8, bear.signal_id: 0.2}
    )


def test_reliability_decides_between_opposing_views() -> None:
    views = [signal("macro_event", score=1.0), signal("precious_metals", score=-1.0)]
    trusted_bull = only(aggregate_signals(views, NOW, {"macro_event": 0.9, "precious_metals": 0.3}))
    trusted_bear = only(aggregate_signals(views, NOW, {"macro_event": 0.3, "precious_metals": 0.9}))
    assert trusted_bull.score == pytest.approx(0.5)
    assert trusted_bear.score == pytest.approx(-0.5)
    even = only(aggregate_signals(views, NOW))
    assert even.score == 0.0 and even.weights == (0.5, 0.5), "strategies without a record get the 0.5 prior"


def test_weak_evidence_gives_less_confidence() -> None:
    fresh = only(aggregate_signals([signal(confidence=0.8)], NOW, {"macro_event": 0.5}))
    stale = only(aggregate_signals([signal(confidence=0.8, age=HOUR)], NOW, {"macro_event": 0.5}))
    assert fresh.confidence == pytest.approx(0.4)
    assert stale.confidence == pytest.approx(0.2)
    assert fresh.score == stale.score == 1.0


def test_modifiers_amplify_and_dampen_other_strategies() -> None:
    views = [signal("macro_event", score=1.0), signal("cross_asset", score=-1.0)]
    plain = only(aggregate_signals(views, NOW))
    amplified = only(aggregate_signals(views, NOW, modifiers=[modifier(1.5)]))
    dampened = only(aggregate_signals(views, NOW, modifiers=[modifier(0.5)]))
    assert plain.weights == (0.5, 0.5)
    # ids sort cross_asset first; the emitter's own signal keeps its weight
    assert amplified.weights == pytest.approx((0.5, 0.75))
    assert dampened.weights == pytest.approx((0.5, 0.25))
    assert amplified.score == pytest.approx((0.75 - 0.5) / 1.25)
    assert dampened.score == pytest.approx((0.25 - 0.5) / 0.75)
    lone = [signal("macro_event", confidence=1.0)]
    assert only(aggregate_signals(lone, NOW, modifiers=[modifier(1.5)])).confidence == pytest.approx(0.75)
    assert only(aggregate_signals(lone, NOW, modifiers=[modifier(0.5)])).confidence == pytest.approx(0.25)


def test_modifiers_stay_within_bounds_and_fade() -> None:
    assert modifier_multiplier([modifier(1.5), modifier(1.5)], "SPY", "macro_event", NOW) == MAX_MULTIPLIER
    assert modifier_multiplier([modifier(0.5), modifier(0.5)], "SPY", "macro_event", NOW) == MIN_MULTIPLIER
    assert modifier_multiplier([modifier(1.5), modifier(0.8)], "SPY", "macro_event", NOW) == pytest.approx(1.2)
    assert modifier_multiplier([modifier(1.5)], "TLT", "macro_event", NOW) == 1.0
    assert modifier_multiplier([modifier(1.5)], "SPY", "cross_asset", NOW) == 1.0
    assert modifier(1.5, age=HOUR).multiplier_at(NOW) == pytest.approx(1.25)
    assert modifier(0.5, age=2 * HOUR).multiplier_at(NOW) == pytest.approx(0.875)
    for bad in (0.49, 1.51, math.nan):
        with pytest.raises(ContractError, match="outside"):
            modifier(bad)


def test_signals_from_the_future_are_refused() -> None:
    with pytest.raises(ContractError, match="after now"):
        aggregate_signals([signal(age=-timedelta(seconds=1))], NOW)
    with pytest.raises(ContractError, match="after now"):
        aggregate_signals([signal()], NOW, modifiers=[modifier(1.2, age=-timedelta(seconds=1))])
    with pytest.raises(ContractError, match="future"):
        decay_factor(-timedelta(seconds=1), HOUR)
    with pytest.raises(ContractError, match="UTC"):
        aggregate_signals([signal()], NOW.replace(tzinfo=None))


def test_weak_signals_are_dropped() -> None:
    old = signal("macro_event", symbol="GLD", age=5 * HOUR)  # 0.5 x 2**-5 < 0.05
    fresh = signal("macro_event", symbol="SPY")
    aggregated = aggregate_signals([old, fresh], NOW)
    assert [a.symbol for a in aggregated] == ["SPY"]
    assert aggregate_signals([old], NOW, min_weight=0.01)[0].symbol == "GLD"


def test_output_is_deterministic_whatever_the_input_order() -> None:
    views = [
        signal(strategy, symbol, score=score, confidence=0.7, age=age * HOUR / 4, source=f"s{age}")
        for strategy in ("macro_event", "precious_metals", "cross_asset")
        for symbol, score in (("TLT", -0.4), ("GLD", 0.9), ("SPY", 0.2))
        for age in range(3)
    ]
    expected = aggregate_signals(views, NOW, modifiers=[modifier(1.3, "GLD")])
    shuffled = views[:]
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert aggregate_signals(shuffled, NOW, modifiers=[modifier(1.3, "GLD")]) == expected
    assert [a.symbol for a in expected] == ["GLD", "SPY", "TLT"]
    assert all(list(a.signal_ids) == sorted(a.signal_ids) for a in expected)


def test_reliability_must_be_a_rate() -> None:
    with pytest.raises(ContractError, match="reliability"):
        aggregate_signals([signal()], NOW, {"macro_event": 1.2})
