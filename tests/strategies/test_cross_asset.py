"""CrossAssetGraph: lead-lag estimation on planted relations, modifiers, and the risk-off TLT buy."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest
from builders_ai_cross import (
    GRAPH_START,
    GRAPH_SYMBOLS,
    bars,
    context,
    graph_now,
    graph_returns,
    graph_tables,
    plant_lag,
    session_times,
    snapshot,
)

from core.config import CrossAssetParams
from core.signals import MAX_MULTIPLIER, MIN_MULTIPLIER
from core.types import ReasonCode, Regime, Side
from strategies.base import StrategyOutput
from strategies.cross_asset import CrossAssetGraph, LeadLag, estimate_lead_lag, hourly_returns

STRATEGY = CrossAssetGraph()
PARAMS = CrossAssetParams()
LAGS = range(6, 25)
FOLLOWERS = PARAMS.symbols


def estimate(returns: dict[str, np.ndarray], hours: int | None = None) -> tuple[LeadLag, ...]:
    names = list(returns)
    matrix = np.column_stack([returns[name] for name in names])
    return estimate_lead_lag(
        matrix if hours is None else matrix[:hours],
        names,
        LAGS,
        FOLLOWERS,
        significance_z=PARAMS.significance_z,
        min_abs_corr=PARAMS.min_abs_corr,
        min_observations=PARAMS.min_observations,
    )


def run(
    returns: dict[str, np.ndarray],
    regime: Regime = Regime.TRENDING_UP,
    entered: frozenset[tuple[str, Side]] = frozenset(),
    vix: tuple[float, float] = (16.0, 16.2),
    spread: tuple[float, float] = (3.1, 3.1),
) -> StrategyOutput:
    snap = snapshot(graph_now(), graph_tables(returns, vix=vix, spread=spread))
    return STRATEGY.evaluate(context(snap, "cross_asset", regime, entered))


def multipliers(output: StrategyOutput) -> dict[str, float]:
    return {m.symbol: m.multiplier for m in output.modifiers}


def test_estimation_recovers_a_planted_lag() -> None:
    returns = graph_returns()
    plant_lag(returns, "BTC/USD", "GLD", lag=9, beta=0.6)
    (relation,) = estimate(returns)
    assert (relation.leader, relation.follower, relation.lag_hours) == ("BTC/USD", "GLD", 9)
    assert 0.35 < relation.correlation < 0.6


def test_estimation_recovers_a_negative_lag_through_session_gaps() -> None:
    returns = graph_returns()
    plant_lag(returns, "HYG", "SPY", lag=18, beta=-0.8)
    hours = np.arange(len(returns["SPY"])) % 24
    returns["SPY"][(hours < 14) | (hours > 20)] = np.nan  # a US-session follower: 7 hours a day
    (relation,) = estimate(returns)
    assert (relation.leader, relation.follower, relation.lag_hours) == ("HYG", "SPY", 18)
    assert relation.correlation < -0.4
    assert relation.observations < 150


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_independent_noise_yields_no_relation(seed: int) -> None:
    assert estimate(graph_returns(seed)) == ()


def test_significance_threshold_scales_with_one_over_sqrt_n() -> None:
    returns = graph_returns()
    plant_lag(returns, "SPY", "TLT", lag=7, beta=0.2)  # corr about 0.2
    assert [(r.leader, r.lag_hours) for r in estimate(returns)] == [("SPY", 7)]
    # 3.5 / sqrt(150) = 0.29: the same relation over a week is not significant.
    assert estimate(returns, hours=160) == ()
    assert estimate(returns, hours=PARAMS.min_observations) == ()


def test_hourly_returns_carry_the_overnight_gap_and_skip_closed_hours() -> None:
    monday, tuesday = datetime(2026, 2, 9, tzinfo=UTC).date(), datetime(2026, 2, 10, tzinfo=UTC).date()
    times = session_times([monday, tuesday])
    closes = [100.0] * 26 + [110.0] * 26
    frame = bars("SPY", times, closes)
    start = datetime.combine(monday, time(0, 0), tzinfo=UTC)
    returns = hourly_returns(frame, ["SPY"], start, start + timedelta(days=2))[:, 0]
    assert returns.shape == (48,)
    assert np.nanmax(np.abs(returns[15:21])) == 0.0  # Monday's session after its first hour
    assert np.isnan(returns[:15]).all() and np.isnan(returns[21:38]).all()
    assert returns[38] == pytest.approx(np.log(1.1))  # Tuesday's first hour holds the gap


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_followers_signal_the_leaders_move_and_views_on_them_count_more(direction: float) -> None:
    returns = graph_returns()
    plant_lag(returns, "BTC/USD", "GLD", lag=9, beta=0.6)
    returns["BTC/USD"][-9:] = direction * 0.01
    output = run(returns)
    (signal,) = output.signals
    assert signal.symbol == "GLD" and signal.source == "lead-lag"
    assert np.sign(signal.score) == direction and abs(signal.score) > 0.5
    assert output.proposals == ()
    assert 1.2 < multipliers(output)["GLD"] <= MAX_MULTIPLIER
    assert set(multipliers(output)) == {"GLD"}


def test_leaders_pulling_apart_dampen_views_on_the_follower() -> None:
    returns = graph_returns()
    plant_lag(returns, "BTC/USD", "GLD", lag=9, beta=0.5)
    plant_lag(returns, "SPY", "GLD", lag=12, beta=0.5)
    assert {(r.leader, r.lag_hours) for r in estimate(returns)} == {("BTC/USD", 9), ("SPY", 12)}
    returns["BTC/USD"][-9:] = 0.008
    returns["SPY"][-12:] = -0.0065
    gld = multipliers(run(returns))["GLD"]
    assert MIN_MULTIPLIER <= gld < 0.9


RISK_VIX, RISK_SPREAD = (16.0, 22.0), (3.1, 3.5)


def risk_off_returns() -> dict[str, np.ndarray]:
    returns = graph_returns()
    returns["HYG"][-24:] = -0.02 / 24
    returns["VIXY"][-24:] = 0.12 / 24
    returns["SPY"][-24:] = -0.03 / 24
    return returns


def test_risk_off_buys_tlt_and_shifts_weight_to_havens() -> None:
    output = run(risk_off_returns(), regime=Regime.TRENDING_DOWN, vix=RISK_VIX, spread=RISK_SPREAD)
    (proposal,) = output.proposals
    assert (proposal.symbol, proposal.side) == ("TLT", Side.BUY)
    assert proposal.reward_risk >= 1.5 and proposal.stop < proposal.entry < proposal.target
    (signal,) = [s for s in output.signals if s.source == "risk-off"]
    assert signal.symbol == "TLT" and signal.score > 0 and signal.signal_id in proposal.signal_ids
    assert "credit, fear, equities" in proposal.reason
    tilt = multipliers(output)
    assert tilt["TLT"] > 1.2 and tilt["GLD"] > 1.2
    assert tilt["SPY"] < 0.8 and tilt["BTC/USD"] < 0.8 and tilt["HYG"] < 0.8


def test_partial_stress_tilts_but_does_not_trade() -> None:
    returns = graph_returns()
    returns["SPY"][-24:] = -0.03 / 24
    output = run(returns, regime=Regime.TRENDING_DOWN, vix=(16.0, 22.0))
    assert output.proposals == () and output.signals == ()
    tilt = multipliers(output)
    assert 1.0 < tilt["TLT"] < 1.3 and 0.7 < tilt["SPY"] < 1.0


def test_a_stress_regime_alone_is_risk_off() -> None:
    calm = graph_returns()
    assert [p.symbol for p in run(calm, regime=Regime.CRASH).proposals] == ["TLT"]
    assert [p.symbol for p in run(calm, regime=Regime.HIGH_VOL).proposals] == ["TLT"]
    assert run(calm, regime=Regime.RECOVERY).proposals == ()


def test_does_not_buy_tlt_it_has_already_bought() -> None:
    entered = frozenset({("TLT", Side.BUY)})
    output = run(risk_off_returns(), regime=Regime.CRASH, entered=entered, vix=RISK_VIX, spread=RISK_SPREAD)
    assert output.proposals == () and any(s.symbol == "TLT" for s in output.signals)


def test_calm_independent_markets_are_silent() -> None:
    assert run(graph_returns(), regime=Regime.TRENDING_UP) == StrategyOutput()


def test_modifiers_stay_within_bounds_whatever_the_leaders_do() -> None:
    rng = np.random.default_rng(5)
    for _ in range(6):
        returns = graph_returns(int(rng.integers(100)))
        plant_lag(returns, "BTC/USD", "GLD", lag=9, beta=float(rng.uniform(-1, 1)))
        plant_lag(returns, "VIXY", "SPY", lag=20, beta=float(rng.uniform(-1, 1)))
        for symbol in GRAPH_SYMBOLS:
            returns[symbol][-24:] += float(rng.normal(0, 0.01))
        output = run(returns, regime=Regime(rng.choice(list(Regime))), vix=RISK_VIX, spread=RISK_SPREAD)
        for modifier in output.modifiers:
            assert MIN_MULTIPLIER <= modifier.multiplier <= MAX_MULTIPLIER
            assert modifier.symbol in STRATEGY.symbols
        assert {p.symbol for p in output.proposals} <= {"TLT"}


def test_runs_on_prices_alone_and_abstains_on_stale_bars() -> None:
    """VIX and the HY spread are read when present; VIXY and HYG are the same gauges in prices
    (issue 15: on price-only data no strategy could run)."""
    tables = graph_tables(graph_returns())
    without_series = {"bars": tables["bars"]}
    assert STRATEGY.evaluate(context(snapshot(graph_now(), without_series), "cross_asset")).abstention is None
    late = snapshot(graph_now() + timedelta(minutes=30), tables)
    reason = STRATEGY.evaluate(context(late, "cross_asset")).abstention
    assert reason is not None and reason.code is ReasonCode.INPUT_STALE and reason.detail.startswith("bars:")


def test_deterministic() -> None:
    returns = risk_off_returns()
    plant_lag(returns, "BTC/USD", "GLD", lag=9, beta=0.6)
    assert run(returns, regime=Regime.CRASH, vix=RISK_VIX, spread=RISK_SPREAD) == run(
        returns, regime=Regime.CRASH, vix=RISK_VIX, spread=RISK_SPREAD
    )


def test_needs_enough_history_for_an_estimate() -> None:
    returns = {symbol: series[:48] for symbol, series in graph_returns().items()}
    plant_lag(returns, "BTC/USD", "GLD", lag=9, beta=1.0)
    snap = snapshot(graph_now(GRAPH_START, 48), graph_tables(returns))
    assert STRATEGY.evaluate(context(snap, "cross_asset", Regime.TRENDING_UP)).signals == ()
