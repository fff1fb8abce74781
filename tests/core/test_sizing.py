"""Sizing: fractional Kelly with a fading prior, times volatility scaling, as a fraction at risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.config import RiskConfig
from core.sizing import SizingParams, TradeStats, blended_edge, kelly_fraction, size, vol_scale
from core.types import ContractError, Side, TradeProposal

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
PARAMS = SizingParams()


def proposal(entry: float = 100.0, stop: float = 95.0, target: float = 110.0) -> TradeProposal:
    return TradeProposal(
        strategy="s",
        symbol="SPY",
        side=Side.BUY,
        entry=entry,
        stop=stop,
        target=target,
        horizon=timedelta(hours=1),
        confidence=0.6,
        signal_ids=(),
        ts_event=T0,
    )


def test_trade_stats_from_r_multiples() -> None:
    stats = TradeStats.from_r_multiples([2.0, -1.0, 1.0, -1.0, 0.0])
    # wins 2 (avg (2 + 1) / 2 = 1.5), losses 2 (avg 1.0), one scratch
    assert (stats.n_trades, stats.n_wins, stats.n_losses) == (5, 2, 2)
    assert stats.win_rate == pytest.approx(0.4)
    assert stats.payoff == pytest.approx(1.5)
    # mean R = (2 - 1 + 1 - 1 + 0) / 5 = 0.2
    assert stats.mean_r == pytest.approx(0.2)


def test_trade_stats_undefined_values_are_none() -> None:
    empty = TradeStats()
    assert (empty.win_rate, empty.payoff, empty.mean_r) == (None, None, None)
    only_wins = TradeStats.from_r_multiples([1.0, 2.0])
    assert only_wins.win_rate == 1.0
    assert only_wins.payoff is None


def test_kelly_fraction_half_kelly() -> None:
    # f* = (b p - q) / b = (2 x 0.5 - 0.5) / 2 = 0.25; half-Kelly 0.125
    assert kelly_fraction(0.5, 2.0, 0.5) == pytest.approx(0.125)
    # (1 x 0.4 - 0.6) / 1 = -0.2: no edge
    assert kelly_fraction(0.4, 1.0, 0.5) == pytest.approx(-0.1)
    # break-even (1 x 0.5 - 0.5) = 0
    assert kelly_fraction(0.5, 1.0, 0.5) == 0.0


def test_prior_alone_without_trades() -> None:
    # p0 = 0.5, b0 = the proposal's reward:risk
    assert blended_edge(TradeStats(), 2.0, PARAMS) == (0.5, 2.0)


def test_prior_fades_linearly_with_trades() -> None:
    # 15 trades: 12 wins of +3R, 3 losses of -1R -> p = 0.8, b = 3
    stats = TradeStats.from_r_multiples([3.0] * 12 + [-1.0] * 3)
    # w = 1 - 15 / 30 = 0.5 -> p = 0.5 x 0.5 + 0.5 x 0.8 = 0.65; b = 0.5 x 2 + 0.5 x 3 = 2.5
    p, b = blended_edge(stats, 2.0, PARAMS)
    assert p == pytest.approx(0.65)
    assert b == pytest.approx(2.5)


def test_prior_gone_after_enough_trades() -> None:
    # 40 trades: 10 wins of +2R, 30 losses of -1R -> p = 0.25, b = 2; w = max(0, 1 - 40/30) = 0
    stats = TradeStats.from_r_multiples([2.0] * 10 + [-1.0] * 30)
    assert blended_edge(stats, 5.0, PARAMS) == pytest.approx((0.25, 2.0))


def test_undefined_measured_payoff_keeps_the_prior_payoff() -> None:
    # 30 wins, no loss: p = 1.0 measured (prior weight 0), b has no measurement -> b0
    stats = TradeStats.from_r_multiples([1.0] * 30)
    assert blended_edge(stats, 1.5, PARAMS) == pytest.approx((1.0, 1.5))


def test_vol_scale() -> None:
    assert vol_scale(0.04, 0.02, 2.0) == pytest.approx(0.5)  # 0.02 / 0.04
    assert vol_scale(0.005, 0.02, 2.0) == 2.0  # 0.02 / 0.005 = 4, capped at 2
    assert vol_scale(None, 0.02, 2.0) == 1.0
    assert vol_scale(0.0, 0.02, 2.0) == 1.0
    assert vol_scale(float("nan"), 0.02, 2.0) == 1.0


def test_size_is_a_fraction_of_equity_at_risk() -> None:
    # f = 0.125 (prior p 0.5, b = 10 / 5 = 2); vol scale 0.02 / 0.04 = 0.5
    # qty = 100_000 x 0.125 x 0.5 / |100 - 95| = 1250; losing at the stop costs 1250 x 5 = 6250
    sized = size(proposal(), 100_000.0, TradeStats(), 0.04, RiskConfig(), PARAMS)
    assert sized.kelly_fraction == pytest.approx(0.125)
    assert sized.vol_scale == pytest.approx(0.5)
    assert sized.qty == pytest.approx(1250.0)
    assert sized.qty * 5.0 == pytest.approx(100_000.0 * 0.125 * 0.5)


def test_size_uses_the_configured_kelly_multiplier() -> None:
    # quarter Kelly: f = 0.25 x 0.25 = 0.0625; qty = 100_000 x 0.0625 x 1.0 / 5 = 1250
    sized = size(proposal(), 100_000.0, TradeStats(), None, RiskConfig(kelly_multiplier=0.25), PARAMS)
    assert sized.qty == pytest.approx(1250.0)


def test_no_edge_no_size() -> None:
    # 30 trades, 9 wins of +1R, 21 losses of -1R: p = 0.3, b = 1 -> (0.3 - 0.7) / 1 < 0
    stats = TradeStats.from_r_multiples([1.0] * 9 + [-1.0] * 21)
    sized = size(proposal(), 100_000.0, stats, 0.02, RiskConfig(), PARAMS)
    assert sized.kelly_fraction < 0
    assert sized.qty == 0.0


def test_sizing_params_are_validated() -> None:
    with pytest.raises(ContractError):
        SizingParams(prior_win_rate=1.0)
    with pytest.raises(ContractError):
        SizingParams(prior_trades=0)
    with pytest.raises(ContractError):
        SizingParams(vol_scale_cap=0.0)
