import math

import numpy as np
import pytest

from core.config import RegimeConfig, RegimeThresholds
from core.features import N_FEATURES, Feature
from core.regime import (
    NO_REGIME,
    REGIMES,
    RULES_VERSION,
    UNKNOWN_VERSION,
    DetectorState,
    RegimeDetector,
    RegimeEstimate,
    classify,
    confirmed,
    estimate_regime,
)
from core.types import Regime

RULES = RegimeThresholds()


def profile(
    day: float = 0.0,
    week: float = 0.0,
    month: float = 0.0,
    volatility: float = 0.15,
    trend: float = 0.0,
    drawdown: float = -0.02,
    **gauges: float,
) -> list[float]:
    """A feature row in absolute units; gauges absent unless given (fear_level=30.0, ...)."""
    row = [math.nan] * N_FEATURES
    for feature, value in zip(
        (Feature.DAY, Feature.WEEK, Feature.MONTH, Feature.VOLATILITY, Feature.TREND, Feature.DRAWDOWN),
        (day, week, month, volatility, trend, drawdown),
        strict=True,
    ):
        row[feature] = value
    for name, value in gauges.items():
        row[Feature[name.upper()]] = value
    return row


def named(*rows: list[float], thresholds: RegimeThresholds = RULES) -> list[Regime | None]:
    codes = classify(np.array(rows), thresholds)
    return [None if code == NO_REGIME else REGIMES[int(code)] for code in codes]


@pytest.mark.parametrize(
    ("row", "regime"),
    [
        # Lehman week: volatility 60%, 25% below the high, down 12% in a month
        (profile(day=-0.05, week=-0.09, month=-0.12, volatility=0.60, trend=-1.3, drawdown=-0.25), Regime.CRASH),
        # a first-day crash from the highs: a 7% week with a 4% day
        (profile(day=-0.04, week=-0.08, month=-0.06, volatility=0.20, drawdown=-0.08), Regime.CRASH),
        # March-May 2009: still 45% below the high, up 10% in a month
        (profile(week=0.03, month=0.10, volatility=0.35, trend=-0.3, drawdown=-0.45), Regime.RECOVERY),
        # a volatile range near the highs
        (profile(day=0.012, week=0.01, volatility=0.30, trend=0.2, drawdown=-0.05), Regime.HIGH_VOL),
        # a 2.5% up day in a bear-market rally is not a recovery
        (profile(day=0.025, week=0.04, month=-0.06, volatility=0.45, trend=-0.8, drawdown=-0.30), Regime.HIGH_VOL),
        (profile(month=0.03, volatility=0.10, trend=1.2, drawdown=-0.01), Regime.TRENDING_UP),
        (profile(month=-0.03, volatility=0.18, trend=-0.9, drawdown=-0.07), Regime.TRENDING_DOWN),
        (profile(month=-0.02, volatility=0.20, trend=-0.2, drawdown=-0.12), Regime.TRENDING_DOWN),
        (profile(day=0.008, month=0.01, volatility=0.12, trend=0.2, drawdown=-0.03), Regime.MEAN_REVERTING),
    ],
)
def test_the_decision_list_names_absolute_profiles(row: list[float], regime: Regime) -> None:
    assert named(row) == [regime]


def test_names_do_not_depend_on_the_history_around_them() -> None:
    calm = profile(day=0.008, month=0.01, volatility=0.12, trend=0.2)
    stressed = [profile(day=-0.03, week=-0.06, volatility=0.5, drawdown=-0.3)] * 50
    assert named(calm) == named(*stressed, calm)[-1:] == [Regime.MEAN_REVERTING]


def test_fear_and_credit_gauges_are_stress_where_the_world_has_them() -> None:
    quiet = {"day": 0.0, "month": 0.01, "volatility": 0.14, "trend": 0.1}
    assert (
        named(
            profile(**quiet, fear_level=27.0),
            profile(**quiet, fear_rise=0.30),
            profile(**quiet, credit_widening=1.2),
            profile(**quiet, credit_drawdown=-0.06),
            profile(**quiet, fear_level=18.0, fear_rise=0.05, credit_widening=0.2, credit_drawdown=-0.01),
            profile(**quiet),
        )
        == [Regime.HIGH_VOL] * 4 + [Regime.MEAN_REVERTING] * 2
    )
    # an extreme VIX makes a falling market a crash before it is 10% down
    assert named(profile(week=-0.055, volatility=0.2, drawdown=-0.06, fear_level=40.0)) == [Regime.CRASH]


def test_incomplete_price_features_have_no_regime_but_a_missing_gauge_is_fine() -> None:
    incomplete = profile()
    incomplete[Feature.DRAWDOWN] = math.nan
    assert named(incomplete, profile()) == [None, Regime.MEAN_REVERTING]


def test_thresholds_are_settings() -> None:
    row = profile(volatility=0.22)
    assert named(row) == [Regime.MEAN_REVERTING]
    assert named(row, thresholds=RegimeThresholds(elevated_volatility=0.20)) == [Regime.HIGH_VOL]
    with pytest.raises(ValueError, match="elevated < extreme"):
        RegimeThresholds(elevated_volatility=0.5)


U, D, M, H, C = (
    REGIMES.index(r)
    for r in (Regime.TRENDING_UP, Regime.TRENDING_DOWN, Regime.MEAN_REVERTING, Regime.HIGH_VOL, Regime.CRASH)
)


def test_a_regime_is_confirmed_by_sessions_but_stress_is_taken_at_once() -> None:
    codes = np.array([NO_REGIME, U, M, U, M, M, H, M, U, U, D, C, D, D])
    assert confirmed(codes, 2).tolist() == [NO_REGIME, U, U, U, U, M, H, H, H, U, U, C, C, D]
    assert confirmed(codes, 1).tolist() == [NO_REGIME, U, M, U, M, M, H, M, U, U, D, C, D, D]


def test_the_estimate_is_the_confirmed_regime_of_the_last_session() -> None:
    config = RegimeConfig()
    calm_up = profile(month=0.03, volatility=0.10, trend=1.2)
    ranging = profile(month=0.0, volatility=0.12, trend=0.1)
    features = np.array([calm_up] * 5 + [ranging])
    estimate = estimate_regime(features, config, ("VIX",))
    assert estimate is not None and estimate.regime is Regime.TRENDING_UP, "one ranging session does not confirm"
    again = estimate_regime(np.array([calm_up] * 5 + [ranging] * 2), config, ())
    assert again is not None and again.regime is Regime.MEAN_REVERTING
    assert again.reason == "rules on prices alone (no fear or credit gauge)"
    assert estimate.reason == "rules on prices and VIX"
    incomplete = np.array([calm_up, [math.nan] * N_FEATURES])
    assert estimate_regime(incomplete, config, ()) is None
    assert estimate_regime(np.empty((0, N_FEATURES)), config, ()) is None


def test_the_detector_reads_every_cycle_and_keeps_the_last_regime_while_inputs_are_missing() -> None:
    detector = RegimeDetector(RegimeConfig())
    state = DetectorState()
    state, first = detector.step(state, None, "no regime: 3 sessions of SPY closes, 22 needed")
    assert first.model_version == UNKNOWN_VERSION and first.confidence == 0.0 and not first.evaluated
    assert first.reason == "no regime: 3 sessions of SPY closes, 22 needed"
    state, crash = detector.step(state, RegimeEstimate(Regime.CRASH, ("VIX",)), "")
    assert crash.regime is Regime.CRASH and crash.changed and crash.evaluated and crash.model_version == RULES_VERSION
    assert crash.probabilities[Regime.CRASH] == 1.0 and sum(crash.probabilities.values()) == 1.0
    state, same = detector.step(state, RegimeEstimate(Regime.CRASH, ("VIX",)), "")
    assert not same.changed
    state, gone = detector.step(state, None, "no regime: no SPY bars to read sessions from")
    assert gone.regime is Regime.CRASH and not gone.evaluated and gone.reason.startswith("no regime")
    assert state.cycle == 4
