import math

import numpy as np
import pytest

from core.features import (
    FEATURE_NAMES,
    N_FEATURES,
    Feature,
    FeatureWindows,
    MarketSeries,
    compute_features,
    latest_features,
    log_returns,
)

SMALL = FeatureWindows(return_window=2, vol_window=2, trend_window=2, drawdown_window=3, stress_window=2)


def random_series(n: int, seed: int, gaps: tuple[int, ...] = ()) -> MarketSeries:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    fear = 20 * np.exp(np.cumsum(rng.normal(0.0, 0.03, n)))
    credit = 80 * np.exp(np.cumsum(rng.normal(0.0, 0.005, n)))
    for index in gaps:
        close[index] = np.nan
    return MarketSeries(close=close, fear=fear, credit=credit)


def test_hand_computed_small_history() -> None:
    series = MarketSeries(
        close=np.exp([0.0, 0.1, -0.1, 0.0, 0.2]),
        fear=np.exp([0.0, 0.0, 0.5, 0.5, 0.5]),
        credit=np.exp([0.0, -0.05, -0.1, -0.08, -0.03]),
    )
    features = compute_features(series, SMALL)
    # log returns 0.1, -0.2, 0.1, 0.2; a pair's sample std is |a - b| / sqrt(2)
    expected = {
        Feature.RET: [math.nan, math.nan, -0.1, -0.1, 0.3],
        Feature.VOL: [math.nan, math.nan, 0.3 / math.sqrt(2), 0.3 / math.sqrt(2), 0.1 / math.sqrt(2)],
        Feature.TREND: [math.nan, math.nan, -0.1 / 0.3, -0.1 / 0.3, 0.3 / 0.1],
        Feature.DRAWDOWN: [math.nan, math.nan, -0.2, -0.1, 0.0],
        Feature.FEAR: [math.nan, math.nan, 0.5, 0.5, 0.0],
        Feature.CREDIT: [math.nan, math.nan, -0.1, -0.03, 0.0],
    }
    for column, values in expected.items():
        np.testing.assert_allclose(features[:, column], values, atol=1e-12, err_msg=column.name)


def test_columns_and_names_agree() -> None:
    assert len(FEATURE_NAMES) == N_FEATURES
    assert compute_features(random_series(50, seed=0), SMALL).shape == (50, N_FEATURES)
    assert FEATURE_NAMES[Feature.DRAWDOWN] == "drawdown"


def test_warm_up_is_nan_until_each_window_fills() -> None:
    windows = FeatureWindows(return_window=5, vol_window=7, trend_window=11, drawdown_window=13, stress_window=4)
    features = compute_features(random_series(60, seed=1), windows)
    first_complete = {
        Feature.RET: 5,
        Feature.VOL: 7,
        Feature.TREND: 11,
        Feature.DRAWDOWN: 12,
        Feature.FEAR: 4,
        Feature.CREDIT: 12,
    }
    for column, first in first_complete.items():
        values = features[:, column]
        assert np.isnan(values[:first]).all(), column.name
        assert np.isfinite(values[first:]).all(), column.name
    assert windows.lookback == 13


def test_missing_bar_blanks_exactly_the_windows_that_need_it() -> None:
    windows = FeatureWindows(return_window=3, vol_window=4, trend_window=5, drawdown_window=6, stress_window=3)
    gap = 30
    features = compute_features(random_series(60, seed=2, gaps=(gap,)), windows)
    # the gap's bar and the next both lose their one-bar return
    vol_blank = set(range(gap, gap + windows.vol_window + 1))
    drawdown_blank = set(range(gap, gap + windows.drawdown_window))
    change_blank = {gap, gap + windows.return_window}
    for i in range(windows.lookback, 60):
        assert np.isnan(features[i, Feature.VOL]) == (i in vol_blank), i
        assert np.isnan(features[i, Feature.DRAWDOWN]) == (i in drawdown_blank), i
        assert np.isnan(features[i, Feature.RET]) == (i in change_blank), i
        assert np.isfinite(features[i, Feature.FEAR]), "a gap in the reference asset must not blank the gauges"


def test_absent_gauges_give_neutral_zero_columns() -> None:
    series = random_series(40, seed=3)
    features = compute_features(MarketSeries(close=series.close), SMALL)
    assert (features[:, Feature.FEAR] == 0).all()
    assert (features[:, Feature.CREDIT] == 0).all()


def test_flat_or_constant_growth_has_no_trend() -> None:
    windows = FeatureWindows(return_window=3, vol_window=4, trend_window=5, drawdown_window=6, stress_window=3)
    growing = MarketSeries(close=100 * np.exp(0.001 * np.arange(1000)))
    features = compute_features(growing, windows)
    assert (features[windows.lookback :, Feature.TREND] == 0).all()
    assert latest_features(growing, windows)[Feature.TREND] == 0


@pytest.mark.parametrize("gaps", [(), (150, 151, 400)])
def test_latest_equals_the_last_vectorised_row(gaps: tuple[int, ...]) -> None:
    windows = FeatureWindows(return_window=10, vol_window=20, trend_window=50, drawdown_window=120, stress_window=30)
    series = random_series(600, seed=4, gaps=gaps)
    features = compute_features(series, windows)
    for end in [*range(1, 130), *range(130, 601, 7)]:
        latest = latest_features(_prefix(series, end), windows)
        np.testing.assert_allclose(latest, features[end - 1], rtol=1e-9, atol=1e-12, err_msg=f"bar {end - 1}")


def _prefix(series: MarketSeries, bars: int) -> MarketSeries:
    return MarketSeries(
        close=series.close[:bars],
        fear=None if series.fear is None else series.fear[:bars],
        credit=None if series.credit is None else series.credit[:bars],
    )


def test_latest_reads_only_the_lookback() -> None:
    series = random_series(500, seed=5)
    altered = series.close.copy()
    altered[: 500 - SMALL.lookback] *= 3.0
    before = latest_features(series, SMALL)
    after = latest_features(MarketSeries(close=altered, fear=series.fear, credit=series.credit), SMALL)
    np.testing.assert_array_equal(before, after)


def test_log_returns() -> None:
    returns = log_returns(np.exp(np.array([0.0, 0.5, 0.25])))
    assert math.isnan(returns[0])
    np.testing.assert_allclose(returns[1:], [0.5, -0.25])


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        MarketSeries(close=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="1-D array of 2 bars"):
        MarketSeries(close=np.array([1.0, 2.0]), fear=np.array([1.0]))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureWindows(vol_window=1)
