"""A backfill's window, and the one-line notes that say what a source could not give of it.

A window is [start, end): a row belongs to it when start <= ts_event < end, whatever the
source's own parameters include (Alpaca's `end` and FRED's `observation_end` are inclusive,
an RSS feed or the CBOE file send everything they have), so every client fetches at least
the window and keeps exactly the window's rows.

A source that cannot reach back over the whole window still gives what it has, and the part
says so in a note (`reach_note`, `current_only_note`) that travels with its batch to the
run's result: a backfill never loads less than asked without saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl

from adapters.feed import FeedBatch, aware_utc


@dataclass(frozen=True)
class Window:
    start: datetime  # inclusive
    end: datetime  # exclusive

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", aware_utc(self.start, "window start"))
        object.__setattr__(self, "end", aware_utc(self.end, "window end"))
        if self.end < self.start:
            raise ValueError(f"window ends before it starts: {self.start.isoformat()} > {self.end.isoformat()}")

    def __str__(self) -> str:
        return f"{_moment(self.start)}..{_moment(self.end)}"

    @property
    def empty(self) -> bool:
        return self.start >= self.end

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def cut(self, frame: pl.DataFrame, column: str = "ts_event") -> pl.DataFrame:
        """The rows of `frame` whose `column` lies in the window."""
        return frame.filter((pl.col(column) >= self.start) & (pl.col(column) < self.end))

    def days(self) -> tuple[date, date]:
        """The calendar days a date-keyed source is asked for: one either side of the window's
        UTC days, since a day's value is stamped at its local close (New York, Beijing) and may
        fall on the UTC day before or after; `cut` then keeps exactly the window's rows."""
        return (self.start - timedelta(days=1)).date(), (self.end + timedelta(days=1)).date()

    def slices(self, length: timedelta) -> list[Window]:
        """Consecutive windows of at most `length` that tile this one."""
        if length <= timedelta(0):
            raise ValueError("a slice must be longer than zero")
        pieces: list[Window] = []
        start = self.start
        while start < self.end:
            end = min(start + length, self.end)
            pieces.append(Window(start, end))
            start = end
        return pieces


def earliest(frame: pl.DataFrame, column: str = "ts_event") -> datetime | None:
    """The first time in `frame`'s `column`, None when it has no rows."""
    value = frame.get_column(column).min() if frame.height else None
    return value if isinstance(value, datetime) else None


def reach_note(window: Window, earliest: datetime | None, kept: str) -> str | None:
    """What of `window` a source whose history starts at `earliest` could give, or None when
    it covers the whole window. `kept` says what the source keeps ('the source keeps 30 days')."""
    if earliest is None or window.start >= earliest:
        return None
    if earliest >= window.end:
        return f"{kept}; nothing of {window} available"
    return f"{kept}; {Window(earliest, window.end)} loaded, {Window(window.start, earliest)} not available"


def history_note(window: Window, first: datetime | None, slack: timedelta, history: str) -> str | None:
    """For a source asked for the window that answers with what it has: what it lacked, when
    its first row in the window (`first`) comes later than `slack` after the window's start
    (a normal gap: a weekend, a funding interval). `history` names what was asked for."""
    if first is None:
        if window.end - window.start <= slack:
            return None
        return f"{history} has nothing in {window}"
    if first - window.start <= slack:
        return None
    return reach_note(window, first, f"{history} has nothing before {_moment(first)}")


def keep_window(batch: FeedBatch, table: str, window: Window | None, holds: str) -> FeedBatch:
    """A source that answers with everything it holds (a calendar, an RSS feed, a history
    file), as a backfill keeps it: the rows of `table` in the window, and a note on the part
    of the window before the oldest row the source holds. `holds` says what it keeps ('the
    feed holds only its latest items'). Without a window, the batch is returned as it is."""
    if window is None:
        return batch
    rows = batch.tables[table]
    oldest = earliest(rows)
    batch.tables[table] = window.cut(rows)
    note = reach_note(window, oldest or window.end, holds if oldest else f"{holds}: none now")
    batch.notes += [note] if note else []
    return batch


def current_only(
    fetch: Callable[[], FeedBatch], window: Window | None, now: datetime, kept: str, feed: str
) -> Callable[[], FeedBatch]:
    """A part whose source gives only its present value, as a backfill runs it: asked only when
    the window reaches `now`, and noting what of the window it cannot give either way."""
    if window is None:
        return fetch

    def run() -> FeedBatch:
        batch = fetch() if window.end >= now else FeedBatch(feed=feed)
        batch.notes.append(current_only_note(window, now, kept))
        return batch

    return run


def current_only_note(window: Window, now: datetime, kept: str) -> str:
    """The note of a source that gives only its present value (`kept` says which)."""
    if window.end >= now:
        return f"{kept}; the value at {_moment(now)} loaded, {Window(window.start, now)} not available"
    return f"{kept}; nothing of {window} available"


def _moment(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    if utc.time() == datetime.min.time():
        return f"{utc:%Y-%m-%d}"
    return f"{utc:%Y-%m-%d %H:%M}"
