"""The numpy helpers the strategies share: resampling as polars' group_by_dynamic does it, and
table columns read once per snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from core.snapshot import EMPTY_BARS, BarArrays, MarketSnapshot, micros
from strategies.common import average_true_range, columns, resample, table_column, table_matches

START = datetime(2026, 3, 2, 13, 47, tzinfo=UTC)


def minute_bars(count: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    # Irregular minutes, with gaps of up to a few hours.
    times = [START + timedelta(minutes=int(m)) for m in np.cumsum(rng.integers(1, 240, count))]
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, count)))
    return pl.DataFrame(
        {
            "ts_event": times,
            "open": close * (1 + rng.normal(0.0, 0.001, count)),
            "high": close * 1.002,
            "low": close * 0.998,
            "close": close,
        },
        schema_overrides={"ts_event": pl.Datetime("us", "UTC")},
    )


@pytest.mark.parametrize(("every", "period"), [(timedelta(hours=1), "1h"), (timedelta(days=1), "1d")])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resample_matches_group_by_dynamic(every: timedelta, period: str, seed: int) -> None:
    frame = minute_bars(300, seed)
    expected = frame.group_by_dynamic("ts_event", every=period).agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last()
    )
    got = resample(BarArrays.of(frame), every)
    assert got.ts.tolist() == [micros(t) for t in expected.get_column("ts_event")]
    for name in ("open", "high", "low", "close"):
        assert getattr(got, name).tolist() == expected.get_column(name).to_list()


def test_resample_of_nothing_is_nothing() -> None:
    assert resample(EMPTY_BARS, timedelta(hours=1)).size == 0


def test_average_true_range_of_the_last_bars() -> None:
    bars = BarArrays.of(minute_bars(20, 4))
    assert average_true_range(bars, 20) is None
    tail = bars.tail(4)
    ranges = [
        max(high - low, abs(high - previous), abs(low - previous))
        for high, low, previous in zip(tail.high[1:], tail.low[1:], tail.close[:-1], strict=True)
    ]
    assert average_true_range(bars, 3) == pytest.approx(sum(ranges) / 3, rel=1e-15)


def test_table_columns_read_once_and_match_text_in_place() -> None:
    frame = pl.DataFrame(
        {
            "series": ["VIX", "HY", "VIX"],
            "ts_event": [START, START, START + timedelta(days=1)],
            "value": [1.0, 2.0, 3.0],
        },
        schema_overrides={"ts_event": pl.Datetime("us", "UTC")},
    )
    snapshot = MarketSnapshot(as_of=START + timedelta(days=2), tables={"market_series": frame})
    values = table_column(snapshot, "market_series", "value")
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert table_column(snapshot, "market_series", "value") is values
    assert table_matches(snapshot, "market_series", "series", "VIX").tolist() == [True, False, True]
    assert columns(frame, ("ts_event",))["ts_event"].tolist() == [micros(START)] * 2 + [micros(START) + 86_400_000_000]
