"""The exchange calendar answers with the NYSE's real sessions: holidays, early closes, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from core.calendar import (
    NO_SESSION,
    NOT_A_SESSION,
    MarketCalendar,
    Timeframe,
    market_calendar,
    nyse_calendar,
    nyse_sessions,
)
from core.snapshot import micros

DAY_MICROS = micros(datetime(1970, 1, 2, tzinfo=UTC))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return nyse_calendar(date(2018, 1, 1), date(2027, 12, 31))


def test_holidays_and_unscheduled_closures_have_no_session(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    for closed in (date(2018, 7, 4), date(2018, 11, 22), date(2018, 12, 5), date(2018, 12, 25), date(2026, 7, 3)):
        assert sessions.session_on(closed) is None, closed
    assert sessions.session_on(date(2018, 7, 5)) is not None
    assert not calendar.is_open("SPY", utc(2018, 7, 4, 15))
    assert calendar.is_open("BTC/USD", utc(2018, 7, 4, 15))


def test_early_closes_end_the_session_at_13_00_new_york(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    friday = sessions.session_on(date(2018, 11, 23))
    assert friday is not None
    assert sessions.close_of(friday) == utc(2018, 11, 23, 18)  # 13:00 EST
    assert calendar.is_open("SPY", utc(2018, 11, 23, 17, 59))
    assert not calendar.is_open("SPY", utc(2018, 11, 23, 18, 0))


def test_sessions_follow_daylight_saving_time(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    winter, summer = sessions.session_on(date(2026, 3, 6)), sessions.session_on(date(2026, 3, 9))
    assert winter is not None and summer is not None
    assert sessions.open_of(winter) == utc(2026, 3, 6, 14, 30)
    assert sessions.open_of(summer) == utc(2026, 3, 9, 13, 30)


def test_the_vector_form_agrees_with_is_open(calendar: MarketCalendar) -> None:
    moments = [utc(2018, 11, 23, 14, 30) + timedelta(minutes=17 * k) for k in range(400)]
    vector = calendar.equities.open_at(np.array([micros(m) for m in moments], dtype=np.int64))
    assert vector.tolist() == [calendar.equities.is_open(m) for m in moments]
    assert vector.any() and not vector.all()


def test_next_open_and_close_skip_weekends_and_holidays(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    assert sessions.next_open(utc(2018, 7, 3, 20)) == utc(2018, 7, 5, 13, 30)  # 3 July closed early, 4 July closed
    assert sessions.next_close(utc(2018, 7, 3, 12)) == utc(2018, 7, 3, 17)
    assert sessions.next_open(utc(2026, 11, 27, 19)) == utc(2026, 11, 30, 14, 30)


def test_session_windows_count_sessions_not_calendar_days(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    # Six sessions back from Wednesday 11 July 2018 reach back over the 4 July holiday.
    assert sessions.start_of_sessions_back(utc(2018, 7, 11, 15), 6) == utc(2018, 7, 3, 13, 30)
    assert sessions.closed_by(utc(2018, 7, 11, 20)) - sessions.closed_by(utc(2018, 7, 2, 20)) == 6


def test_a_bar_is_known_at_its_close(calendar: MarketCalendar) -> None:
    assert calendar.bar_close("SPY", Timeframe.MIN_30, utc(2018, 7, 3, 14)) == utc(2018, 7, 3, 14, 30)
    # Daily equity bars close with their session, early on a half day, whatever their stamp.
    for stamp in (utc(2018, 7, 3), utc(2018, 7, 3, 4), utc(2018, 7, 3, 20)):
        assert calendar.bar_close("SPY", Timeframe.DAY_1, stamp) == utc(2018, 7, 3, 17)
    assert calendar.bar_close("BTC/USD", Timeframe.DAY_1, utc(2018, 7, 4)) == utc(2018, 7, 5)
    with pytest.raises(ValueError, match="no NYSE session on 2018-07-04"):
        calendar.bar_close("SPY", Timeframe.DAY_1, utc(2018, 7, 4))


def test_the_vector_form_gives_each_bar_its_close_and_no_session_on_a_holiday(calendar: MarketCalendar) -> None:
    starts = np.array([micros(moment) for moment in (utc(2018, 7, 2), utc(2018, 7, 3, 4), utc(2018, 7, 4))])
    assert calendar.bar_closes("SPY", Timeframe.DAY_1, starts).tolist() == [
        micros(utc(2018, 7, 2, 20)),
        micros(utc(2018, 7, 3, 17)),  # the half day
        NO_SESSION,
    ]
    assert calendar.bar_closes("BTC/USD", Timeframe.DAY_1, starts).tolist() == (starts + DAY_MICROS).tolist()
    assert calendar.bar_closes("SPY", Timeframe.MIN_30, starts).tolist() == (starts + DAY_MICROS // 48).tolist()


def test_timeframes_by_length() -> None:
    assert [t.value for t in Timeframe] == ["1Min", "5Min", "15Min", "30Min", "1Hour", "1Day"]
    assert Timeframe.of_length(timedelta(minutes=30)) is Timeframe.MIN_30
    assert Timeframe.of_length(timedelta(minutes=2)) is None
    assert not Timeframe.DAY_1.intraday and Timeframe.HOUR_1.intraday


def test_a_moment_outside_the_span_or_naive_is_refused() -> None:
    sessions = nyse_sessions(date(2018, 1, 1), date(2018, 12, 31))
    with pytest.raises(ValueError, match="outside the calendar's span"):
        sessions.is_open(utc(2020, 3, 9, 15))
    with pytest.raises(ValueError, match="naive"):
        sessions.is_open(datetime(2018, 3, 9, 15))  # noqa: DTZ001 - the point of the test


def test_sessions_on_or_after_a_day_and_their_dates(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    thanksgiving = sessions.first_on_or_after(date(2026, 11, 26))
    assert sessions.day_of(thanksgiving) == date(2026, 11, 27)
    assert sessions.first_on_or_after(date(2026, 11, 27)) == thanksgiving
    assert sessions.day_of(sessions.first_on_or_after(date(2026, 11, 28))) == date(2026, 11, 30)
    with pytest.raises(ValueError, match="no session on or after 2028-01-01"):
        sessions.first_on_or_after(date(2028, 1, 1))


def test_one_market_calendar_covers_decades_of_history_and_the_simulated_future() -> None:
    calendar = market_calendar()
    assert calendar is market_calendar()  # built once per process
    assert calendar.equities.first_day <= date(1990, 1, 2) and calendar.equities.last_day >= date(2099, 12, 30)
    assert not calendar.is_open("SPY", utc(2001, 9, 11, 15))  # closed after the attacks
    assert calendar.is_open("SPY", utc(2008, 9, 29, 15)) and calendar.is_open("ETH/USD", utc(2056, 12, 25))


def test_sessions_of_moments_and_of_days_in_vector_form(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    moments = np.array(
        [micros(m) for m in (utc(2018, 7, 3, 14), utc(2018, 7, 3, 17, 30), utc(2018, 7, 4, 15), utc(2018, 7, 5, 4))]
    )
    half_day = sessions.session_on(date(2018, 7, 3))
    # In session; after the half day's 13:00 close; a holiday; the night before a session.
    assert sessions.containing(moments).tolist() == [half_day, NOT_A_SESSION, NOT_A_SESSION, NOT_A_SESSION]
    # By day a daily bar's stamp names its session, the holiday none.
    assert sessions.on_days(moments).tolist() == [
        half_day,
        half_day,
        NOT_A_SESSION,
        sessions.session_on(date(2018, 7, 5)),
    ]


def test_a_window_of_sessions_ahead_ends_at_a_session_close_past_holidays(calendar: MarketCalendar) -> None:
    sessions = calendar.equities
    # Thursday 2 July 2026, mid-session: it is the first session, Friday 3 July is the holiday.
    assert sessions.close_of_sessions_ahead(utc(2026, 7, 2, 15), 2) == utc(2026, 7, 6, 20)
    # After Thursday's close the next session to open is the first.
    assert sessions.close_of_sessions_ahead(utc(2026, 7, 2, 21), 1) == utc(2026, 7, 6, 20)
    assert sessions.close_of_sessions_ahead(utc(2026, 11, 27, 15), 1) == utc(2026, 11, 27, 18)  # a half day
