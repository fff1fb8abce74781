"""MarketSnapshot's derived views: the bars split by symbol into numpy columns, and the memo."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.snapshot import (
    EMPTY_BARS,
    BarArrays,
    BarSplit,
    MarketSnapshot,
    TableMemo,
    from_micros,
    micros,
    micros_of,
    split_bars,
    visible_split,
)

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "timeframe": pl.String(),
        "ts_event": pl.Datetime("us", "UTC"),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "ts_ingested": pl.Datetime("us", "UTC"),
    }
)


def bar_rows(symbol: str, timeframe: str, closes: list[float], step: timedelta = MINUTE) -> list[tuple[object, ...]]:
    return [
        (symbol, timeframe, START + i * step, close, close + 1.0, close - 1.0, close, START + (i + 1) * step)
        for i, close in enumerate(closes)
    ]


def bars_frame(rows: list[tuple[object, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


ROWS = (
    bar_rows("BTC/USD", "1Min", [100.0, 101.0, 102.0])
    + bar_rows("SPY", "1Day", [500.0, 505.0], step=timedelta(days=1))
    + bar_rows("SPY", "1Min", [600.0, 601.0, 602.0, 603.0])
)


def snapshot_of(frame: pl.DataFrame) -> MarketSnapshot:
    return MarketSnapshot(as_of=START + timedelta(days=3), tables={"bars": frame})


@pytest.mark.parametrize("order", ["warehouse", "shuffled"])
def test_bars_split_by_symbol_and_timeframe_oldest_first_whatever_the_row_order(order: str) -> None:
    rows = sorted(ROWS, key=lambda row: (row[0], row[1], row[2])) if order == "warehouse" else ROWS[::-1]
    snapshot = snapshot_of(bars_frame(list(rows)))
    spy = snapshot.bar_arrays("SPY")
    assert spy.close.tolist() == [600.0, 601.0, 602.0, 603.0]
    assert spy.ts.tolist() == [micros(START + i * MINUTE) for i in range(4)]
    assert spy.high.tolist() == [601.0, 602.0, 603.0, 604.0] and spy.low.tolist() == [599.0, 600.0, 601.0, 602.0]
    assert snapshot.bar_arrays("SPY", "1Day").close.tolist() == [500.0, 505.0]
    assert snapshot.bar_symbols() == ["BTC/USD", "SPY"] and snapshot.bar_symbols("1Day") == ["SPY"]
    assert snapshot.last_price("BTC/USD") == 102.0


def test_a_symbol_split_across_the_frame_is_sorted_together() -> None:
    btc = bar_rows("BTC/USD", "1Min", [1.0, 2.0, 3.0, 4.0])
    split = split_bars(bars_frame([btc[2], btc[3], *bar_rows("ETH/USD", "1Min", [9.0]), btc[0], btc[1]]))
    assert split.arrays[("BTC/USD", "1Min")].close.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert split.arrays[("ETH/USD", "1Min")].close.tolist() == [9.0]


def assert_same_bars(split: BarSplit, expected: BarSplit) -> None:
    assert split.arrays.keys() == expected.arrays.keys()
    for key, arrays in expected.arrays.items():
        for column in ("ts", "open", "high", "low", "close"):
            assert getattr(split.arrays[key], column).tolist() == getattr(arrays, column).tolist()


@given(
    shuffle=st.randoms(use_true_random=False),
    visible=st.lists(st.booleans(), min_size=len(ROWS), max_size=len(ROWS)),
    in_warehouse_order=st.booleans(),
)
def test_the_visible_part_of_a_split_is_the_split_of_the_visible_rows(
    shuffle: object, visible: list[bool], in_warehouse_order: bool
) -> None:
    rows = sorted(ROWS, key=lambda row: (row[0], row[1], row[2])) if in_warehouse_order else list(ROWS)
    if not in_warehouse_order:
        shuffle.shuffle(rows)  # type: ignore[attr-defined]
    frame = bars_frame(rows)
    shown = np.array(visible)
    assert_same_bars(visible_split(split_bars(frame), shown), split_bars(frame.filter(pl.Series(shown))))


def test_a_window_of_each_symbols_newest_bars_is_a_view_not_a_copy() -> None:
    frame = bars_frame(sorted(ROWS, key=lambda row: (row[0], row[1], row[2])))
    split = split_bars(frame)
    newest = np.array([False, True, True, False, True, False, False, True, True])  # rows 3 and 5-6 hidden
    visible = visible_split(split, newest)
    assert visible.arrays[("BTC/USD", "1Min")].close.base is not None  # consecutive: a view
    assert visible.arrays[("SPY", "1Min")].close.tolist() == [602.0, 603.0]
    assert_same_bars(visible, split_bars(frame.filter(pl.Series(newest))))


def test_missing_bars_are_empty() -> None:
    snapshot = snapshot_of(bars_frame(list(ROWS)))
    assert snapshot.bar_arrays("GLD") is EMPTY_BARS
    empty = MarketSnapshot(as_of=START, tables={})
    assert empty.bar_symbols() == [] and empty.bar_arrays("SPY").size == 0 and empty.last_price("SPY") is None


def test_closes_are_a_copy() -> None:
    snapshot = snapshot_of(bars_frame(list(ROWS)))
    closes = snapshot.closes("SPY")
    closes[0] = -1.0
    assert snapshot.closes("SPY")[0] == 600.0


def test_bar_arrays_slice_by_time() -> None:
    bars = snapshot_of(bars_frame(list(ROWS))).bar_arrays("SPY")
    second = START + MINUTE
    assert bars.count_until(second) == 2 and bars.count_before(second) == 1
    assert bars.count_until(second - timedelta(microseconds=1)) == 1
    assert bars.until(second).close.tolist() == [600.0, 601.0]
    assert bars.tail(2).close.tolist() == [602.0, 603.0] and bars.tail(10).size == 4
    assert bars.rows(1, 3).ts.tolist() == bars.ts[1:3].tolist()
    assert EMPTY_BARS.until(second).size == 0


def test_micros_round_trip_exactly() -> None:
    for moment in (START, datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC), START + timedelta(microseconds=7)):
        assert from_micros(micros(moment)) == moment
    column = pl.Series("ts_event", [START, START + timedelta(microseconds=3)], dtype=pl.Datetime("us", "UTC"))
    expected = [micros(START), micros(START) + 3]
    assert micros_of(column).tolist() == expected
    assert micros_of(column.cast(pl.Datetime("ns", "UTC"))).tolist() == expected
    assert micros_of(column.cast(pl.Datetime("ms", "UTC"))).tolist() == [micros(START)] * 2


def test_bar_arrays_of_reads_a_frame_in_its_order() -> None:
    frame = bars_frame(bar_rows("SPY", "1Min", [3.0, 1.0, 2.0]))
    arrays = BarArrays.of(frame)
    assert arrays.close.dtype == np.float64 and arrays.ts.dtype == np.int64
    assert arrays.close.tolist() == [3.0, 1.0, 2.0]


def test_derived_values_are_computed_once_per_key() -> None:
    snapshot = snapshot_of(bars_frame(list(ROWS)))
    calls: list[str] = []

    def compute(name: str) -> str:
        calls.append(name)
        return name.upper()

    assert snapshot.derived(("test", "a"), lambda: compute("a")) == "A"
    assert snapshot.derived(("test", "a"), lambda: compute("again")) == "A"
    assert snapshot.derived(("test", "b"), lambda: compute("b")) == "B"
    assert calls == ["a", "b"]
    # Another snapshot of the same tables derives its own.
    assert snapshot_of(snapshot.table("bars")).derived(("test", "a"), lambda: compute("c")) == "C"


@given(
    delays=st.lists(st.integers(min_value=0, max_value=6), min_size=3, max_size=40),
    window_minutes=st.integers(min_value=2, max_value=25),
    tail=st.integers(min_value=1, max_value=12),
)
def test_a_value_kept_for_a_window_of_bars_is_what_its_bars_give_at_every_moment(
    delays: list[int], window_minutes: int, tail: int
) -> None:
    """Bars learned late (after later bars) and bars leaving the window at its oldest end: a value
    shared through the memo is, at every moment of a replay, the value of the bars seen then."""
    rows = [
        ("BTC/USD", "1Min", START + i * MINUTE, 100.0 + i, 101.0 + i, 99.0 + i, 100.0 + i, START + (i + 1 + d) * MINUTE)
        for i, d in enumerate(delays)
    ]
    frame = bars_frame(rows)
    split = split_bars(frame)
    event, learned = micros_of(frame.get_column("ts_event")), micros_of(frame.get_column("ts_ingested"))
    memo = TableMemo()
    computed = []

    def closes(bars: BarArrays) -> list[float]:
        computed.append(bars.window)
        return bars.close.tolist()

    for minute in range(len(delays) + 8):
        as_of = START + minute * MINUTE
        now = micros(as_of)
        seen = (learned <= now) & (event >= micros(as_of - window_minutes * MINUTE))
        snapshot = MarketSnapshot(
            as_of=as_of, tables={"bars": frame}, bar_split=visible_split(split, seen), table_memo=memo
        )
        bars = snapshot.bar_arrays("BTC/USD").tail(tail)
        assert snapshot.from_bars(("closes", "BTC/USD"), bars, closes) == bars.close.tolist()
    assert all(a != b for a, b in itertools.pairwise(computed))  # once while it lasted


def test_derived_values_stay_out_of_the_repr() -> None:
    snapshot = snapshot_of(bars_frame(list(ROWS)))
    snapshot.bar_symbols()
    assert "_derived" not in repr(snapshot)


def test_input_age_is_the_newest_fact_at_as_of() -> None:
    snapshot = snapshot_of(bars_frame(list(ROWS)))
    # Bars of the cycle's timeframe (1Min) count from their close: SPY's last minute opened at START + 3 min.
    assert snapshot.input_age("bars") == snapshot.as_of - (START + 4 * MINUTE)
    assert snapshot.input_age("bars") == snapshot.input_age("bars")
    assert snapshot.input_age("headlines") is None
