"""Backfill windows: [start, end), their slices, and the notes on what a source could not give."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import polars as pl
import pytest

from adapters.window import Window, current_only_note, history_note, reach_note

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 12, 7, 15, tzinfo=UTC)


def test_a_window_holds_its_start_and_not_its_end() -> None:
    window = Window(START, END)
    frame = pl.DataFrame({"ts_event": [START - timedelta(microseconds=1), START, END - timedelta(seconds=1), END]})
    assert window.cut(frame)["ts_event"].to_list() == [START, END - timedelta(seconds=1)]
    assert window.holds(START) and not window.holds(END)
    assert str(window) == "2026-01-01..2026-12-07 15:00"


def test_slices_tile_the_window_without_gap_or_overlap() -> None:
    slices = Window(START, END).slices(timedelta(days=30))
    assert slices[0].start == START and slices[-1].end == END and len(slices) == 12
    assert all(a.end == b.start for a, b in pairwise(slices))
    assert max(piece.end - piece.start for piece in slices) == timedelta(days=30)
    assert Window(START, START).slices(timedelta(days=1)) == [] and Window(START, START).empty


def test_a_window_refuses_naive_times_and_an_end_before_its_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(datetime(2026, 1, 1), END)  # noqa: DTZ001
    with pytest.raises(ValueError, match="ends before it starts"):
        Window(END, START)


def test_date_keyed_sources_are_asked_for_a_day_either_side() -> None:
    assert Window(START, END).days() == (date(2025, 12, 31), date(2026, 12, 8))


def test_notes_say_what_of_the_window_was_loaded_and_what_is_not_available() -> None:
    window = Window(START, END)
    kept_from = END - timedelta(days=30)
    assert reach_note(window, kept_from, "the source keeps 30 days") == (
        "the source keeps 30 days; 2026-11-07 15:00..2026-12-07 15:00 loaded,"
        " 2026-01-01..2026-11-07 15:00 not available"
    )
    assert reach_note(window, START, "the source keeps 30 days") is None
    assert reach_note(window, END, "kept") == "kept; nothing of 2026-01-01..2026-12-07 15:00 available"
    assert current_only_note(window, END, "current only") == (
        "current only; the value at 2026-12-07 15:00 loaded, 2026-01-01..2026-12-07 15:00 not available"
    )
    assert current_only_note(Window(START, kept_from), END, "current only") == (
        "current only; nothing of 2026-01-01..2026-11-07 15:00 available"
    )


def test_a_history_that_starts_within_the_slack_of_the_window_is_not_noted() -> None:
    window = Window(START, END)
    week = timedelta(days=7)
    assert history_note(window, START + timedelta(days=3), week, "FRED X") is None  # a holiday week
    assert history_note(window, None, week, "FRED X") == "FRED X has nothing in 2026-01-01..2026-12-07 15:00"
    assert history_note(Window(START, START + timedelta(days=2)), None, week, "FRED X") is None
    assert history_note(window, datetime(2026, 3, 2, tzinfo=UTC), week, "FRED X") == (
        "FRED X has nothing before 2026-03-02;"
        " 2026-03-02..2026-12-07 15:00 loaded, 2026-01-01..2026-03-02 not available"
    )
