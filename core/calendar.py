"""When markets trade and when a bar is known: exchange sessions and bar timeframes.

Real-world facts come from a well-kept library, never from hand-written hours: the NYSE's
sessions, holidays and early closes are `exchange_calendars`' XNYS calendar, turned once into
two arrays (each session's open and close, UTC microseconds) that every question here answers
with a binary search. Crypto trades around the clock; its "sessions" are UTC days.

Everything that counts time in trading terms uses this module: the market simulator (which so
has holidays and half days), the simulated broker, the market-hours checks, the regime's and the
strategies' windows (counted in sessions, never in calendar days) and the sim clock.

Pure: the calendar is built for the span of dates the caller asks for (no clock is read, unlike
the library's default span, which ends a year after today).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.config import is_crypto
from core.timestamps import DAY_MICROS, IntArray, from_micros, micros
from core.types import Timeframe as Timeframe

DAY = timedelta(days=1)
# Sessions.containing's and on_days' answer for a moment or a day without a session.
NOT_A_SESSION = -1
# MarketCalendar.bar_closes' answer for a daily equity bar on a day without a session.
NO_SESSION = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class Sessions:
    """One exchange's sessions in time order: each one's date, open and close (UTC micros).

    A session is open from its open (inclusive) to its close (exclusive).
    """

    name: str
    days: NDArray[np.datetime64]  # datetime64[D], the session's date in the exchange's time zone
    opens: IntArray
    closes: IntArray

    def __post_init__(self) -> None:
        if not (self.days.shape == self.opens.shape == self.closes.shape) or self.opens.size == 0:
            raise ValueError(f"{self.name}: sessions need as many dates, opens and closes, at least one")
        if np.any(self.closes <= self.opens) or np.any(self.opens[1:] < self.closes[:-1]):
            raise ValueError(f"{self.name}: sessions must be ordered and must not overlap")

    @property
    def first_day(self) -> date:
        return _as_date(self.days[0])

    @property
    def last_day(self) -> date:
        return _as_date(self.days[-1])

    def index_at(self, moment: datetime) -> int | None:
        """The session open at `moment`, or None when the market is closed then."""
        self._check_covers(moment)
        index = int(np.searchsorted(self.opens, micros(moment), side="right")) - 1
        return index if index >= 0 and micros(moment) < int(self.closes[index]) else None

    def is_open(self, moment: datetime) -> bool:
        return self.index_at(moment) is not None

    def open_at(self, moments: IntArray) -> NDArray[np.bool_]:
        """Whether the market is open at each of `moments` (UTC micros): the vector form of is_open."""
        result: NDArray[np.bool_] = self.containing(moments) != NOT_A_SESSION
        return result

    def containing(self, moments: IntArray) -> IntArray:
        """The session open at each of `moments` (UTC micros), NOT_A_SESSION where the market is closed."""
        index = np.searchsorted(self.opens, moments, side="right") - 1
        inside = (index >= 0) & (moments < self.closes[np.maximum(index, 0)])
        return np.where(inside, index, NOT_A_SESSION)

    def on_days(self, moments: IntArray) -> IntArray:
        """The session held on the UTC date of each of `moments` (UTC micros), NOT_A_SESSION on a
        holiday or a weekend: a daily bar's session, whether it is stamped at midnight New York,
        at midnight UTC or at its close."""
        days = (moments // DAY_MICROS).astype("datetime64[D]")
        index = np.minimum(np.searchsorted(self.days, days), self.days.size - 1)
        return np.where(self.days[index] == days, index, NOT_A_SESSION)

    def closed_by(self, moment: datetime) -> int:
        """How many sessions had closed by `moment` (their close at or before it)."""
        self._check_covers(moment)
        return int(np.searchsorted(self.closes, micros(moment), side="right"))

    def next_open(self, moment: datetime) -> datetime:
        """The first session open strictly after `moment`."""
        self._check_covers(moment)
        index = int(np.searchsorted(self.opens, micros(moment), side="right"))
        if index >= self.opens.size:
            raise ValueError(f"{self.name}: no session after {moment.isoformat()} within {self._span}")
        return from_micros(int(self.opens[index]))

    def next_close(self, moment: datetime) -> datetime:
        """The first session close strictly after `moment`."""
        self._check_covers(moment)
        index = int(np.searchsorted(self.closes, micros(moment), side="right"))
        if index >= self.closes.size:
            raise ValueError(f"{self.name}: no session after {moment.isoformat()} within {self._span}")
        return from_micros(int(self.closes[index]))

    def first_on_or_after(self, day: date) -> int:
        """The index of the first session held on or after `day` (the exchange's date)."""
        index = self._day_index(day)
        if index >= self.days.size:
            raise ValueError(f"{self.name}: no session on or after {day.isoformat()} within {self._span}")
        return index

    def day_of(self, index: int) -> date:
        return _as_date(self.days[index])

    def session_on(self, day: date) -> int | None:
        """The index of the session held on `day` (the exchange's date), or None on a holiday or weekend."""
        index = self._day_index(day)
        return index if index < self.days.size and _as_date(self.days[index]) == day else None

    def close_of(self, index: int) -> datetime:
        return from_micros(int(self.closes[index]))

    def open_of(self, index: int) -> datetime:
        return from_micros(int(self.opens[index]))

    def close_of_sessions_ahead(self, moment: datetime, count: int) -> datetime:
        """The close of the `count`-th session from `moment`, the one in progress (or else the next
        to open) being the first: the end of a window of `count` sessions starting now."""
        self._check_covers(moment)
        first = int(np.searchsorted(self.closes, micros(moment), side="right"))
        return self.close_of(min(first + count - 1, self.closes.size - 1))

    def start_of_sessions_back(self, moment: datetime, count: int) -> datetime:
        """The open of the session `count` sessions back from the one in progress (or the last
        closed) at `moment`: the start of a window of `count` sessions ending at `moment`."""
        self._check_covers(moment)
        current = int(np.searchsorted(self.opens, micros(moment), side="right")) - 1
        return from_micros(int(self.opens[max(current - count + 1, 0)]))

    def _day_index(self, day: date) -> int:
        return int(np.searchsorted(self.days, np.datetime64(day, "D")))

    def _check_covers(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError(f"{self.name}: a naive time has no place on a calendar: {moment!r}")
        if not (self.opens[0] - DAY_MICROS * 7 <= micros(moment) <= self.closes[-1] + DAY_MICROS * 7):
            raise ValueError(f"{self.name}: {moment.isoformat()} is outside the calendar's span {self._span}")

    @property
    def _span(self) -> str:
        return f"{self.first_day.isoformat()}..{self.last_day.isoformat()}"


def _as_date(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


@functools.cache
def nyse_sessions(first: date, last: date) -> Sessions:
    """NYSE sessions from `first` to `last` (inclusive): holidays and early closes included."""
    # Imported here: the library costs half a second to import, and only processes that trade
    # or simulate need it.
    import exchange_calendars

    calendar = exchange_calendars.get_calendar("XNYS", start=first.isoformat(), end=last.isoformat())
    schedule = calendar.schedule
    return Sessions(
        name="XNYS",
        days=schedule.index.values.astype("datetime64[D]"),
        opens=_utc_micros(schedule["open"]),
        closes=_utc_micros(schedule["close"]),
    )


def _utc_micros(moments: Any) -> IntArray:
    """A pandas column of aware times as UTC micros."""
    naive_utc: NDArray[np.datetime64] = moments.dt.tz_convert(None).to_numpy()
    return naive_utc.astype("datetime64[us]").astype(np.int64)


@dataclass(frozen=True, slots=True)
class MarketCalendar:
    """When each watched symbol trades: US equities and ETFs in NYSE sessions, crypto always."""

    equities: Sessions

    def is_open(self, symbol: str, moment: datetime) -> bool:
        return is_crypto(symbol) or self.equities.is_open(moment)

    def bar_close(self, symbol: str, timeframe: Timeframe, start: datetime) -> datetime:
        """When a bar that started at `start` closes, so when it can be known.

        An intraday bar closes its length after it starts. A daily bar of an equity is its
        session (the exchange's date of `start`), which closes at the session's close, early on a
        half day; a daily crypto bar is a whole day.
        """
        [close] = self.bar_closes(symbol, timeframe, np.array([micros(start)], dtype=np.int64))
        if close == NO_SESSION:
            raise ValueError(f"{symbol}: no NYSE session on {start.astimezone(UTC).date().isoformat()} for a daily bar")
        return from_micros(int(close))

    def bar_closes(self, symbol: str, timeframe: Timeframe, starts: IntArray) -> IntArray:
        """bar_close of each of `starts` (UTC micros), as UTC micros: the vector form. NO_SESSION
        where a daily equity bar's day has no session."""
        if timeframe.intraday or is_crypto(symbol):
            return starts + timeframe.length // timedelta(microseconds=1)
        index = self.equities.on_days(starts)
        return np.where(index != NOT_A_SESSION, self.equities.closes[index], NO_SESSION)

    def sessions_closed_before(self, now: datetime) -> datetime:
        """Daily equity bars that started before this moment (midnight UTC after the last session
        closed by `now`) had closed by `now`."""
        closed = self.equities.closed_by(now)
        if not closed:
            return from_micros(int(self.equities.opens[0]))
        return datetime.combine(_as_date(self.equities.days[closed - 1]) + DAY, datetime.min.time(), tzinfo=UTC)


def nyse_calendar(first: date, last: date) -> MarketCalendar:
    return MarketCalendar(nyse_sessions(first, last))


# Every moment HYDRA trades, simulates or replays falls in this span: real histories reach back
# decades, the simulator runs on from 2026. A century's calendar costs about what a year's does
# (the library's import dominates), so one span serves all and is built once per process.
NYSE_SPAN = (date(1990, 1, 1), date(2099, 12, 31))


@functools.cache
def market_calendar() -> MarketCalendar:
    """The NYSE calendar over NYSE_SPAN, the one calendar of every world: the simulator's, the
    simulated broker's, the market-hours checks', the decision windows' and the sim clock's."""
    return nyse_calendar(*NYSE_SPAN)
