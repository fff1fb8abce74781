"""Ranking: expected value = confidence x reward:risk x strategy weight, deterministic order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from core.ranking import expected_value, rank_proposals
from core.types import Side, TradeProposal

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def proposal(strategy: str, symbol: str, *, confidence: float, target: float, side: Side = Side.BUY) -> TradeProposal:
    # entry 100, stop 95 (risk 5) for a buy; mirrored for a sell.
    stop = 95.0 if side is Side.BUY else 105.0
    return TradeProposal(
        strategy=strategy,
        symbol=symbol,
        side=side,
        entry=100.0,
        stop=stop,
        target=target,
        horizon=timedelta(hours=1),
        confidence=confidence,
        signal_ids=(),
        ts_event=T0,
    )


def test_expected_value_is_confidence_times_reward_risk_times_weight() -> None:
    # reward:risk = (110 - 100) / (100 - 95) = 2; EV = 0.8 x 2 x 1.5 = 2.4
    assert expected_value(proposal("a", "SPY", confidence=0.8, target=110.0), 1.5) == pytest.approx(2.4)


def test_rank_descending_by_expected_value_with_weights() -> None:
    low = proposal("a", "SPY", confidence=0.5, target=110.0)  # 0.5 x 2 x 1.0 = 1.0
    high = proposal("b", "SPY", confidence=0.5, target=110.0)  # 0.5 x 2 x 3.0 = 3.0
    mid = proposal("c", "QQQ", confidence=0.9, target=107.5)  # 0.9 x 1.5 x 1.0 = 1.35
    ranked = rank_proposals([low, high, mid], {"a": 1.0, "b": 3.0})
    assert [r.proposal for r in ranked] == [high, mid, low]
    assert [r.rank for r in ranked] == [1, 2, 3]
    assert [r.expected_value for r in ranked] == pytest.approx([3.0, 1.35, 1.0])
    assert [r.strategy_weight for r in ranked] == [3.0, 1.0, 1.0]


def test_unknown_strategy_gets_the_default_weight() -> None:
    ranked = rank_proposals([proposal("new", "SPY", confidence=0.5, target=110.0)], {}, default_weight=0.7)
    # 0.5 x 2 x 0.7 = 0.7
    assert ranked[0].strategy_weight == 0.7
    assert ranked[0].expected_value == pytest.approx(0.7)


def test_ties_break_by_strategy_then_symbol_whatever_the_input_order() -> None:
    # All four have EV 0.5 x 2 x 1 = 1.0.
    tied = [
        proposal("b", "AAA", confidence=0.5, target=110.0),
        proposal("a", "ZZZ", confidence=0.5, target=110.0),
        proposal("a", "MMM", confidence=0.5, target=110.0),
        proposal("a", "MMM", confidence=0.5, target=90.0, side=Side.SELL),
    ]
    expected = [("a", "MMM", Side.BUY), ("a", "MMM", Side.SELL), ("a", "ZZZ", Side.BUY), ("b", "AAA", Side.BUY)]
    for order in itertools.permutations(tied):
        ranked = rank_proposals(order, {})
        assert [(r.proposal.strategy, r.proposal.symbol, r.proposal.side) for r in ranked] == expected


def test_empty_input_ranks_nothing() -> None:
    assert rank_proposals([], {"a": 1.0}) == ()
