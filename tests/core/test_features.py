import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from core.calendar import nyse_sessions
from core.features import (
    FEATURE_NAMES,
    N_FEATURES,
    Feature,
    SessionSeries,
    SessionWindows,
    aligned,
    compute_features,
    latest_features,
    merge_closes,
    session_closes,
)
from core.snapshot import BarArrays, micros

SMALL = SessionWindows(week=2, month=3, volatility=3, trend=4, drawdown=5, credit_drawdown=3, minimum=3, gauge_carry=1)
SESSIONS = nyse_sessions(date(2018, 1, 1), date(2018, 12, 31))


def series(close: list[float] | np.ndarray, **gauges: np.ndarray) -> SessionSeries:
    values = np.asarray(close, dtype=float)
    return SessionSeries(sessions=np.arange(values.shape[0]), close=values, **gauges)


def random_closes(n: int, seed: int) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.01, n)))


def test_hand_computed_small_history() -> None:
    log_close = np.array([0.0, 0.1, -0.1, 0.0, 0.2, 0.1])
    features = compute_features(series(np.exp(log_close)), SMALL)
    # returns: 0.1, -0.2, 0.1, 0.2, -0.1; rows 0-2 have fewer than `minimum` (3) returns
    nan = math.nan
    expected = {
        Feature.DAY: [nan, nan, nan, 0.1, 0.2, -0.1],
        Feature.WEEK: [nan, nan, nan, -0.1, 0.3, 0.1],
        Feature.MONTH: [nan, nan, nan, 0.0, 0.1, 0.2],
        Feature.VOLATILITY: [
            nan,
            nan,
            nan,
            *(np.std(w, ddof=1) * math.sqrt(252) for w in ([0.1, -0.2, 0.1], [-0.2, 0.1, 0.2], [0.1, 0.2, -0.1])),
        ],
        Feature.DRAWDOWN: [nan, nan, nan, -0.1, 0.0, -0.1],
    }
    for column, values in expected.items():
        np.testing.assert_allclose(features[:, column], values, atol=1e-12, err_msg=column.name)
    # the trend of row 3 uses the returns up to 4 back: 0.1, -0.2, 0.1
    window = np.array([0.1, -0.2, 0.1])
    assert features[3, Feature.TREND] == pytest.approx(window.sum() / (window.std(ddof=1) * math.sqrt(3)))


def test_columns_and_names_agree() -> None:
    assert len(FEATURE_NAMES) == N_FEATURES
    assert compute_features(series(random_closes(50, seed=0)), SMALL).shape == (50, N_FEATURES)
    assert FEATURE_NAMES[Feature.DRAWDOWN] == "drawdown"


def test_long_windows_use_what_there_is_above_the_minimum() -> None:
    windows = SessionWindows()
    features = compute_features(series(random_closes(300, seed=1)), windows)
    first = windows.minimum
    assert np.isnan(features[:first, Feature.DRAWDOWN]).all()
    assert np.isfinite(features[first:, [Feature.DAY, Feature.WEEK, Feature.MONTH, Feature.VOLATILITY]]).all()
    assert np.isfinite(features[first:, [Feature.TREND, Feature.DRAWDOWN]]).all()
    assert np.isnan(features[:, Feature.FEAR_LEVEL]).all(), "no gauge, no value: never a silent zero"


def test_flat_or_constant_growth_has_no_trend() -> None:
    growing = series(100 * np.exp(0.001 * np.arange(200)))
    features = compute_features(growing)
    assert (features[SessionWindows().minimum :, Feature.TREND] == 0).all()
    assert (features[SessionWindows().minimum :, Feature.VOLATILITY] < 1e-9).all()


def test_latest_equals_the_last_row_and_reads_only_the_lookback() -> None:
    windows = SessionWindows()
    closes = random_closes(700, seed=4)
    fear = 20 + np.random.default_rng(5).random(700) * 10
    fear[[600, 601, 650]] = np.nan
    full = series(closes, fear_level=fear)
    features = compute_features(full, windows)
    for end in (30, 100, 300, 700):
        np.testing.assert_allclose(latest_features(full.tail(end), windows), compute_features(full.tail(end))[-1])
    np.testing.assert_allclose(latest_features(full, windows), features[-1], rtol=1e-9)
    altered = closes.copy()
    altered[: 700 - windows.lookback - windows.gauge_carry] *= 3.0
    np.testing.assert_array_equal(latest_features(series(altered, fear_level=fear)), latest_features(full))


def test_a_gauge_is_carried_a_few_sessions_never_longer() -> None:
    fear = np.array([20.0, np.nan, np.nan, 30.0, np.nan, np.nan])
    features = compute_features(series(random_closes(6, seed=6), fear_level=fear), SMALL)
    np.testing.assert_array_equal(features[:, Feature.FEAR_LEVEL], [20.0, 20.0, np.nan, 30.0, 30.0, np.nan])


def test_gauges_in_their_own_units() -> None:
    n = 30
    spread = np.linspace(3.0, 6.0, n)  # widening by 0.1 points a session
    hyg = 80 * np.exp(np.concatenate([np.zeros(20), -0.01 * np.arange(1, 11)]))
    vixy = 20 * np.exp(0.05 * np.arange(n))
    features = compute_features(
        series(random_closes(n, seed=7), credit_spread=spread, credit_price=hyg, fear_price=vixy), SessionWindows()
    )
    assert features[-1, Feature.CREDIT_WIDENING] == pytest.approx(21 * 0.1 * 3.0 / 2.9, rel=1e-9)
    assert features[-1, Feature.CREDIT_DRAWDOWN] == pytest.approx(-0.10)
    assert features[-1, Feature.FEAR_RISE] == pytest.approx(0.25)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def bars_at(times: list[datetime], closes: list[float]) -> BarArrays:
    ts = np.array([micros(t) for t in times], dtype=np.int64)
    values = np.asarray(closes, dtype=float)
    return BarArrays(ts, values, values, values, values)


def test_daily_bars_name_their_session_and_count_once_it_closed() -> None:
    # Tuesday 3 July 2018 is a half day, 4 July a holiday; Alpaca stamps daily bars at midnight New York.
    daily = bars_at([utc(2018, 7, 2, 4), utc(2018, 7, 3, 4), utc(2018, 7, 5, 4), utc(2018, 7, 6, 4)], [1, 2, 3, 4])
    index, close = session_closes(daily, SESSIONS, utc(2018, 7, 6, 15), daily=True)
    assert [SESSIONS.open_of(int(i)).date() for i in index] == [date(2018, 7, d) for d in (2, 3, 5)]
    assert close.tolist() == [1, 2, 3], "Friday's bar is not known before Friday's close"
    assert index[2] - index[1] == 1, "the holiday is no session: windows count sessions"


def test_intraday_bars_give_each_session_its_last_close_and_the_current_one_its_latest() -> None:
    times = [
        utc(2018, 11, 23, 14, 30),  # Friday after Thanksgiving, 09:30 EST
        utc(2018, 11, 23, 17, 59),  # its last minute: the session closes at 13:00 EST
        utc(2018, 11, 23, 20, 0),  # after the close: in no session
        utc(2018, 11, 26, 12, 0),  # pre-market Monday: in no session
        utc(2018, 11, 26, 14, 30),
        utc(2018, 11, 26, 15, 0),
    ]
    bars = bars_at(times, [10, 11, 12, 13, 14, 15])
    index, close = session_closes(bars, SESSIONS, utc(2018, 11, 26, 15, 1), daily=False)
    assert close.tolist() == [11, 15]
    assert SESSIONS.close_of(int(index[0])) == utc(2018, 11, 23, 18)


def test_merge_prefers_the_daily_close_and_align_leaves_gaps() -> None:
    merged = merge_closes((np.array([3, 4]), np.array([30.0, 40.0])), (np.array([4, 5]), np.array([41.0, 50.0])))
    assert merged[0].tolist() == [3, 4, 5] and merged[1].tolist() == [30.0, 40.0, 50.0]
    values = aligned(np.array([2, 3, 5]), (np.array([3, 4]), np.array([1.5, 2.5])))
    np.testing.assert_array_equal(values, [np.nan, 1.5, np.nan])


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        series([1.0, -1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        SessionSeries(sessions=np.array([1, 1]), close=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="expected 2 values"):
        series([1.0, 2.0], fear_level=np.array([1.0]))
    with pytest.raises(ValueError, match="at least 2"):
        SessionWindows(week=1)
    assert latest_features(series([]), SMALL).shape == (N_FEATURES,)
    assert np.isnan(latest_features(series([]), SMALL)).all()
