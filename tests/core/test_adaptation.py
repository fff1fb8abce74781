"""Strategy weights and reliabilities from recent closed trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.adaptation import (
    DEFAULT_ADAPTATION,
    AdaptationParams,
    StrategyPerformance,
    initial_performance,
    record_trade,
    reliabilities,
    reliability,
    weights,
)
from core.sizing import TradeStats
from core.types import ContractError

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def replay(r_multiples: list[float], params: AdaptationParams = DEFAULT_ADAPTATION) -> StrategyPerformance:
    performance = initial_performance("s", params)
    for i, r in enumerate(r_multiples):
        performance, _ = record_trade(performance, r, T0 + timedelta(minutes=i), params)
    return performance


def test_weight_starts_at_base_and_holds_until_min_trades() -> None:
    assert initial_performance("s").weight == 1.0
    # four trades < min_trades 5: target = base, so the weight does not move
    assert replay([3.0, 3.0, 3.0, 3.0]).weight == 1.0


def test_fifth_trade_moves_the_weight_a_tenth_of_the_way() -> None:
    four = replay([2.0, -1.0, 2.0, -1.0])
    performance, row = record_trade(four, 2.0, T0)
    # mean R = (2 - 1 + 2 - 1 + 2) / 5 = 0.8; target = 1 x (1 + 1 x 0.8) = 1.8
    # weight = 1.0 + 0.1 x (1.8 - 1.0) = 1.08
    assert performance.weight == pytest.approx(1.08)
    assert row.weight == pytest.approx(1.08)
    assert row.strategy == "s"
    assert row.ts_event == T0
    assert row.win_rate == pytest.approx(0.6)  # 3 wins / 5
    assert row.avg_rr == pytest.approx(2.0)  # avg win 2 / avg loss 1
    assert row.n_trades == 5


def test_losing_strategy_loses_weight() -> None:
    # mean R = (-1 x 4 + 0.5) / 5 = -0.7; target 0.3; weight 1 + 0.1 x (0.3 - 1) = 0.93
    assert replay([-1.0, -1.0, -1.0, -1.0, 0.5]).weight == pytest.approx(0.93)


def test_weights_stay_within_bounds() -> None:
    # mean R 10 -> target clamps to 2.0; mean R -10 -> 0.25
    strong = replay([10.0] * 200)
    weak = replay([-10.0] * 200)
    assert 1.99 < strong.weight <= 2.0
    assert 0.25 <= weak.weight < 0.26


def test_one_outlier_moves_an_established_weight_little() -> None:
    steady = replay([1.0, -1.0] * 15)
    w = steady.weight
    assert 0.95 < w < 1.05
    after, _ = record_trade(steady, 50.0, T0)
    # window drops the oldest +1: mean R = (14 - 15 + 50) / 30 = 1.633 -> target 2.0 (clamped)
    # weight = w + 0.1 x (2.0 - w): about a tenth of the way
    assert after.weight == pytest.approx(w + 0.1 * (2.0 - w))
    assert after.weight - w < 0.11


def test_window_keeps_the_last_n_trades() -> None:
    performance = replay([float(i) for i in range(35)])
    assert performance.recent_r == tuple(float(i) for i in range(5, 35))
    assert performance.stats.n_trades == 30
    assert performance.n_total == 35


def test_reliability_is_a_prior_weighted_hit_rate() -> None:
    assert reliability(TradeStats()) == 0.5  # the prior alone
    # 6 wins of 10: (6 + 0.5 x 10) / (10 + 10) = 0.55
    assert reliability(TradeStats.from_r_multiples([1.0] * 6 + [-1.0] * 4)) == pytest.approx(0.55)


def test_mappings_for_ranking_and_signals() -> None:
    a = replay([2.0] * 5)  # mean R 2 -> target 2.0 (3.0 clamped); weight 1.1; reliability (5 + 5) / 15
    b = initial_performance("t")
    assert weights([a, b]) == pytest.approx({"s": 1.1, "t": 1.0})
    assert reliabilities([a, b]) == pytest.approx({"s": 10 / 15, "t": 0.5})


def test_params_are_validated() -> None:
    with pytest.raises(ContractError):
        AdaptationParams(min_weight=1.5)
    with pytest.raises(ContractError):
        AdaptationParams(smoothing=0.0)
    with pytest.raises(ContractError):
        AdaptationParams(min_trades=40)
