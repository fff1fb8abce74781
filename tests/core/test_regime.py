from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.config import RegimeConfig
from core.features import N_FEATURES, Feature, FeatureWindows, MarketSeries, compute_features
from core.regime import (
    NO_REGIME,
    REGIMES,
    RULES_VERSION,
    UNKNOWN_VERSION,
    DetectorState,
    FeatureScale,
    HmmSpec,
    InsufficientHistory,
    RegimeDetector,
    RegimeEstimate,
    RegimeModel,
    classify_rules,
    estimate_regime,
    needs_refit,
    rules_estimate,
)
from core.types import Regime, RegimeReading

FIT_TIME = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
WINDOWS = FeatureWindows(return_window=20, vol_window=30, trend_window=120, drawdown_window=4500, stress_window=120)
SPEC = HmmSpec(sample_every=5)
WARM_UP = 4500
SEGMENTS = (  # (regime, bars)
    (Regime.TRENDING_UP, 4000),
    (Regime.CRASH, 1500),
    (Regime.RECOVERY, 2500),
    (Regime.MEAN_REVERTING, 4000),
)


def synthetic_market(seed: int) -> tuple[MarketSeries, np.ndarray]:
    """A drifting warm-up, then a calm uptrend, a crash, a partial recovery and a choppy range."""
    rng = np.random.default_rng(seed)
    (_, up), (_, crash), (_, recovery), (_, chop) = SEGMENTS
    returns = np.concatenate(
        [
            rng.normal(0.0, 0.0012, WARM_UP),
            rng.normal(0.0002, 0.001, up),
            rng.normal(-0.0008, 0.004, crash),
            rng.normal(0.0003, 0.002, recovery),
        ]
    )
    log_close = np.log(100.0) + np.cumsum(returns)
    level = current = log_close[-1]
    ranging = np.empty(chop)
    for i in range(chop):
        current += 0.05 * (level - current) + rng.normal(0.0, 0.0015)
        ranging[i] = current
    log_close = np.concatenate([log_close, ranging])
    quiet = np.zeros(WARM_UP + up)
    fear_drift = np.concatenate([quiet, np.full(crash, 0.004), np.full(recovery, -0.0012), np.zeros(chop)])
    credit_drift = np.concatenate([quiet, np.full(crash, -0.0003), np.full(recovery, 0.0002), np.zeros(chop)])
    n = log_close.shape[0]
    series = MarketSeries(
        close=np.exp(log_close),
        fear=20 * np.exp(np.cumsum(fear_drift + rng.normal(0.0, 0.002, n))),
        credit=80 * np.exp(np.cumsum(credit_drift + rng.normal(0.0, 0.0003, n))),
    )
    truth = np.concatenate(
        [np.full(WARM_UP, NO_REGIME)] + [np.full(bars, REGIMES.index(regime)) for regime, bars in SEGMENTS]
    )
    return series, truth


@pytest.fixture(scope="module")
def market() -> tuple[np.ndarray, np.ndarray, RegimeModel]:
    series, truth = synthetic_market(seed=3)
    features = compute_features(series, WINDOWS)
    return features, truth, RegimeModel.fit(features, FIT_TIME, seed=7, spec=SPEC)


def test_hmm_names_the_majority_of_each_segment(market: tuple[np.ndarray, np.ndarray, RegimeModel]) -> None:
    features, truth, model = market
    codes = model.classify_history(features)
    for regime, _ in SEGMENTS:
        segment = truth == REGIMES.index(regime)
        accuracy = float(np.mean(codes[segment] == REGIMES.index(regime)))
        assert accuracy > 0.7, f"{regime}: {accuracy:.2f} of its bars named right"


def test_fit_is_deterministic_for_a_seed(market: tuple[np.ndarray, np.ndarray, RegimeModel]) -> None:
    features, _, model = market
    again = RegimeModel.fit(features, FIT_TIME, seed=7, spec=SPEC)
    np.testing.assert_array_equal(again.means, model.means)
    np.testing.assert_array_equal(again.transitions, model.transitions)
    assert again.state_regimes == model.state_regimes
    assert model.version == "hmm-2026-03-02T21:00:00+00:00"


def test_live_estimate_equals_the_history_row(market: tuple[np.ndarray, np.ndarray, RegimeModel]) -> None:
    features, _, model = market
    history = model.history_probabilities(features)
    for bar in (WARM_UP + 10, WARM_UP + 4700, features.shape[0] - 1):
        estimate = model.estimate(features[: bar + 1])
        assert estimate is not None
        live = np.array([estimate.probabilities[regime] for regime in REGIMES])
        np.testing.assert_allclose(live, history[bar], atol=1e-9)
        assert estimate.model_version == model.version


def test_history_is_filtered_not_smoothed(market: tuple[np.ndarray, np.ndarray, RegimeModel]) -> None:
    features, _, model = market
    cut = WARM_UP + 5000
    np.testing.assert_array_equal(
        model.history_probabilities(features[:cut]), model.history_probabilities(features)[:cut]
    )


def test_incomplete_rows_have_no_regime(market: tuple[np.ndarray, np.ndarray, RegimeModel]) -> None:
    features, _, model = market
    codes = model.classify_history(features)
    assert (codes[: WINDOWS.drawdown_window - 1] == NO_REGIME).all()
    assert (codes[WINDOWS.drawdown_window - 1 :] != NO_REGIME).all()
    assert model.estimate(features[:100]) is None


def test_too_little_history_keeps_the_rules() -> None:
    rows = np.random.default_rng(0).normal(size=(1000, N_FEATURES))
    with pytest.raises(InsufficientHistory):
        RegimeModel.fit(rows, FIT_TIME, seed=7, spec=HmmSpec(sample_every=15, min_samples=500))


def profile(ret: float = 0.0, vol: float = 0.0, trend: float = 0.0, drawdown: float = 0.0) -> list[float]:
    row = [0.0] * N_FEATURES
    row[Feature.RET], row[Feature.VOL], row[Feature.TREND], row[Feature.DRAWDOWN] = ret, vol, trend, drawdown
    return row


UNIT = FeatureScale(center=np.zeros(N_FEATURES), scale=np.ones(N_FEATURES))


@pytest.mark.parametrize(
    ("row", "regime"),
    [
        (profile(vol=2.0, trend=-1.0, drawdown=-2.0), Regime.CRASH),
        (profile(vol=2.0, ret=-2.0), Regime.CRASH),
        (profile(vol=0.5, trend=1.0, drawdown=-1.2), Regime.RECOVERY),
        (profile(vol=2.0, trend=1.0, drawdown=-1.2), Regime.RECOVERY),
        (profile(vol=2.0, trend=0.2), Regime.HIGH_VOL),
        (profile(vol=-0.5, trend=1.0), Regime.TRENDING_UP),
        (profile(trend=-1.0, drawdown=-2.0), Regime.TRENDING_DOWN),
        (profile(vol=1.0, trend=0.3, drawdown=-0.5), Regime.MEAN_REVERTING),
    ],
)
def test_decision_list_names_profiles(row: list[float], regime: Regime) -> None:
    assert REGIMES[int(classify_rules(np.array([row]), UNIT)[0])] is regime


def test_stress_gauges_count_as_stress() -> None:
    fearful = profile(trend=0.2)
    fearful[Feature.FEAR] = 2.0
    credit_strain = profile(trend=-1.0)
    credit_strain[Feature.CREDIT] = -2.0
    codes = classify_rules(np.array([fearful, credit_strain]), UNIT)
    assert [REGIMES[int(code)] for code in codes] == [Regime.HIGH_VOL, Regime.CRASH]


def test_alike_states_get_one_name_whatever_their_order() -> None:
    rows = np.array([profile(vol=2.0, trend=-1.0), profile(trend=1.0), profile(vol=2.0 + 1e-12, trend=-1.0)])
    codes = classify_rules(rows, UNIT)
    np.testing.assert_array_equal(codes, classify_rules(rows[::-1], UNIT)[::-1])
    assert codes[0] == codes[2] == REGIMES.index(Regime.CRASH)


def test_rules_before_the_first_fit(market: tuple[np.ndarray, np.ndarray, RegimeModel]) -> None:
    features, _, model = market
    rules = estimate_regime(features, None)
    assert rules is not None and rules.model_version == RULES_VERSION
    assert max(rules.probabilities.values()) == 1.0
    fitted = estimate_regime(features, model)
    assert fitted is not None and fitted.model_version.startswith("hmm-")
    assert estimate_regime(features[:10], None) is None


def test_rules_vectorised_equal_row_by_row() -> None:
    rows = np.random.default_rng(1).normal(size=(200, N_FEATURES)) * [0.003, 0.0004, 1.5, 0.01, 0.05, 0.005]
    rows[[5, 50]] = np.nan
    codes = classify_rules(rows)
    for row, code in zip(rows, codes, strict=True):
        estimate = rules_estimate(row)
        if code == NO_REGIME:
            assert estimate is None
        else:
            assert estimate is not None and estimate.most_likely is REGIMES[code]
    assert len(set(codes.tolist())) >= 4


def estimate(probabilities: dict[Regime, float], version: str = "hmm-test") -> RegimeEstimate:
    return RegimeEstimate({regime: probabilities.get(regime, 0.0) for regime in REGIMES}, version)


def test_evaluates_only_every_n_cycles() -> None:
    detector = RegimeDetector(RegimeConfig(evaluate_every_cycles=10))
    calls: list[int] = []
    state = DetectorState()

    def evaluate() -> RegimeEstimate:
        calls.append(state.cycle)
        return estimate({Regime.TRENDING_UP: 0.9, Regime.CRASH: 0.1})

    evaluated = []
    for _ in range(25):
        state, reading = detector.step(state, evaluate)
        evaluated.append(reading.evaluated)
        assert reading.regime is Regime.TRENDING_UP and reading.confidence == 0.9
    assert calls == [0, 10, 20]
    assert [i for i, flag in enumerate(evaluated) if flag] == [0, 10, 20]


def test_keeps_trying_until_a_first_estimate() -> None:
    detector = RegimeDetector(RegimeConfig(evaluate_every_cycles=10))
    answers = [None, None, estimate({Regime.HIGH_VOL: 1.0})]
    state = DetectorState()
    readings = []
    for _ in range(4):
        state, reading = detector.step(state, lambda: answers.pop(0) if answers else pytest.fail("off cadence"))
        readings.append(reading)
    assert [r.model_version for r in readings] == [UNKNOWN_VERSION, UNKNOWN_VERSION, "hmm-test", "hmm-test"]
    assert readings[0].confidence == 0.0
    assert readings[2].regime is Regime.HIGH_VOL and readings[2].changed and readings[2].evaluated
    assert not readings[3].evaluated and not readings[3].changed


def readings_for(detector: RegimeDetector, estimates: list[RegimeEstimate]) -> list[RegimeReading]:
    """Steps the detector once per estimate, each cycle evaluating the next one."""
    pending = iter(estimates)
    state = DetectorState()
    readings = []
    for _ in estimates:
        state, reading = detector.step(state, lambda: next(pending))
        readings.append(reading)
    return readings


UP_AHEAD = estimate({Regime.TRENDING_UP: 0.52, Regime.MEAN_REVERTING: 0.48})
RANGING_AHEAD = estimate({Regime.TRENDING_UP: 0.45, Regime.MEAN_REVERTING: 0.55})


def test_hysteresis_prevents_flapping_near_even_odds() -> None:
    detector = RegimeDetector(RegimeConfig(evaluate_every_cycles=1, hysteresis=0.15))
    decisive = estimate({Regime.TRENDING_UP: 0.2, Regime.MEAN_REVERTING: 0.8})
    first, *flickering, switched = readings_for(detector, [UP_AHEAD] + [RANGING_AHEAD, UP_AHEAD] * 10 + [decisive])
    assert first.regime is Regime.TRENDING_UP and first.changed
    for reading in flickering:
        assert reading.evaluated and reading.regime is Regime.TRENDING_UP and not reading.changed
    assert flickering[0].confidence == 0.45, "confidence is the posterior of the regime held"
    assert switched.regime is Regime.MEAN_REVERTING and switched.changed and switched.confidence == 0.8
    assert switched.probabilities[Regime.TRENDING_UP] == 0.2


def test_without_hysteresis_it_would_flap() -> None:
    detector = RegimeDetector(RegimeConfig(evaluate_every_cycles=1, hysteresis=0.0))
    readings = readings_for(detector, [UP_AHEAD, RANGING_AHEAD] * 2)
    assert [r.regime for r in readings] == [Regime.TRENDING_UP, Regime.MEAN_REVERTING] * 2


def test_needs_refit() -> None:
    assert needs_refit(None, FIT_TIME, 7.0)
    assert not needs_refit(FIT_TIME, FIT_TIME + timedelta(days=6, hours=23), 7.0)
    assert needs_refit(FIT_TIME, FIT_TIME + timedelta(days=7), 7.0)
    with pytest.raises(ValueError, match="precedes"):
        needs_refit(FIT_TIME, FIT_TIME - timedelta(seconds=1), 7.0)


def test_estimates_are_validated() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        RegimeEstimate({Regime.CRASH: 0.7}, "hmm-test")
    with pytest.raises(ValueError, match="summing to 1"):
        estimate({Regime.CRASH: 0.7, Regime.RECOVERY: 0.7})
