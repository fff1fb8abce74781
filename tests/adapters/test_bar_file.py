"""A user's bar file (CSV or Parquet) read as warehouse bars, or refused with what to fix."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from adapters.bar_file import BarFile
from adapters.feed import FeedBatch
from adapters.table_file import TableFileError
from quality.validate import validate_table

CSV = """Symbol,Timestamp,Open,High,Low,Close,Volume
SPY,2026-03-02 14:30:00,500,501,499,500.5,1000
SPY,2026-03-02 14:31:00,500.5,502,500,501.5,1200
BTC/USD,2026-03-02T14:30:00+01:00,90000,90100,89900,90050,3.5
"""
KEY = ["symbol", "timeframe", "ts_event"]


def read(path: Path, rows: int = 100_000) -> FeedBatch:
    """The whole file as one batch, read `rows` rows at a time."""
    bars = BarFile.survey(path, rows)
    batch = FeedBatch("bar-file")
    for chunk in bars.chunks(rows):
        batch.extend(chunk)
    return batch


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_csv_becomes_bars_known_when_they_close(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(CSV.replace("+01:00", ""), encoding="utf-8")
    bars = read(path).tables["bars"]
    assert bars.columns[:3] == ["symbol", "timeframe", "ts_event"]
    first = bars.row(0, named=True)
    assert first["ts_event"] == utc(2026, 3, 2, 14, 30)  # naive means UTC
    assert first["ts_ingested"] == first["ts_event"] + timedelta(minutes=1)
    assert (first["timeframe"], first["source"], first["close"]) == ("1Min", "file:mine.csv", 500.5)
    assert bars.height == 3


def test_a_daily_equity_bar_is_known_at_its_sessions_close_not_a_day_after_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "daily.parquet"
    start = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).replace(tzinfo=None)  # New York wall time, zoned below
    pl.DataFrame(
        {
            "symbol": ["GLD"],
            "time": [start],
            "timeframe": ["1Day"],
            **{c: [180.0] for c in ("open", "high", "low", "close")},
            "volume": [5e6],
        }
    ).with_columns(pl.col("time").dt.replace_time_zone("America/New_York")).write_parquet(path)
    [bar] = read(path).tables["bars"].to_dicts()
    assert bar["ts_event"] == utc(2026, 3, 2, 14, 30)
    assert bar["ts_ingested"] == utc(2026, 3, 2, 21)  # 16:00 New York, standard time


def test_a_stated_ts_ingested_is_when_the_bar_was_learned_but_never_before_its_close(tmp_path: Path) -> None:
    path = tmp_path / "learned.csv"
    path.write_text(
        "symbol,ts_event,close,ts_ingested\n"
        "SPY,2026-03-02T14:30:00Z,500,2026-03-02T14:45:00Z\n"
        "SPY,2026-03-02T14:31:00Z,501,2026-03-02T14:30:00Z\n"
        "SPY,2026-03-02T14:32:00Z,502,\n",
        encoding="utf-8",
    )
    assert read(path).tables["bars"].get_column("ts_ingested").to_list() == [
        utc(2026, 3, 2, 14, 45),
        utc(2026, 3, 2, 14, 32),
        utc(2026, 3, 2, 14, 33),
    ]


def test_thirty_minute_bars_without_a_timeframe_column_are_known_thirty_minutes_after_they_start(
    tmp_path: Path,
) -> None:
    # BTC/ETH 30-minute bars as exchanges publish them: no timeframe column.
    starts = pl.datetime_range(utc(2021, 1, 1), utc(2021, 1, 3), "30m", eager=True)
    path = tmp_path / "crypto_30m.csv"
    pl.DataFrame(
        {
            "symbol": ["BTC/USD"] * len(starts) + ["ETH/USD"] * len(starts),
            "timestamp": pl.concat([starts, starts]),
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5,
            "volume": 10.0,
        }
    ).write_csv(path)

    bars = read(path, rows=7).tables["bars"]  # chunk boundaries inside each symbol's bars

    assert set(bars["timeframe"]) == {"30Min"}
    assert (bars["ts_ingested"] - bars["ts_event"]).unique().to_list() == [timedelta(minutes=30)]


def test_a_date_only_daily_file_is_daily_known_at_each_close_and_a_holiday_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "spy_daily.csv"
    path.write_text(
        "Date,Symbol,Open,High,Low,Close,Volume\n"
        "2018-07-02,SPY,269.5,271.3,268.9,271.0,63000000\n"
        "2018-07-03,SPY,272.0,272.1,269.7,270.0,42000000\n"
        "2018-07-04,SPY,270.0,270.0,270.0,270.0,0\n"  # Independence Day: no session
        "2018-07-05,SPY,271.2,273.2,270.4,273.1,56000000\n",
        encoding="utf-8",
    )

    batch = read(path)

    bars = batch.tables["bars"]
    assert set(bars["timeframe"]) == {"1Day"}
    assert bars["ts_ingested"].to_list() == [
        utc(2018, 7, 2, 20),
        utc(2018, 7, 3, 17),  # a half day: the session closed at 13:00 New York
        utc(2018, 7, 5, 20),
    ]
    [holiday] = batch.rejected
    assert "SPY: a daily bar on 2018-07-04, a day without an NYSE session" in holiday.reason


def test_close_only_index_levels_without_volume_load_with_the_close_as_every_price(tmp_path: Path) -> None:
    path = tmp_path / "index_levels.csv"
    path.write_text(
        "date,symbol,close\n2008-09-29,SPX,1106.42\n2008-09-30,SPX,1166.36\n2008-10-01,SPX,1161.06\n",
        encoding="utf-8",
    )

    bars = read(path).tables["bars"]
    outcome = validate_table("bars", bars, KEY)

    assert outcome.passed.height == 3 and not outcome.rejected
    first = outcome.passed.row(0, named=True)
    assert first["open"] == first["high"] == first["low"] == first["close"] == 1106.42
    assert first["volume"] is None  # unknown, not zero


def test_an_empty_volume_is_unknown_and_a_present_one_is_still_validated(tmp_path: Path) -> None:
    path = tmp_path / "volumes.csv"
    path.write_text(
        "symbol,ts_event,close,volume\nSPY,2026-03-02,500,\nSPY,2026-03-03,501,-5\nSPY,2026-03-04,502,1e308\n",
        encoding="utf-8",
    )

    outcome = validate_table("bars", read(path).tables["bars"], KEY)

    assert outcome.passed["volume"].to_list() == [None]
    assert [r.row["volume"] for r in outcome.rejected] == [-5.0, 1e308]


def test_a_stated_timeframe_the_bars_overlap_is_refused_naming_symbol_timeframe_and_spacing(tmp_path: Path) -> None:
    path = tmp_path / "stated.csv"
    rows = "".join(f"SPY,2026-03-02 14:{minute:02d},500,30Min\n" for minute in range(30, 40))
    path.write_text("symbol,ts_event,close,timeframe\n" + rows, encoding="utf-8")
    with pytest.raises(TableFileError, match="SPY: stated 30Min, but its bars are most often 1 minute apart"):
        BarFile.survey(path)


def test_spacing_that_is_no_timeframe_is_refused_saying_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "two_minutes.csv"
    rows = "".join(f"SPY,2026-03-02 14:{minute:02d},500\n" for minute in range(30, 50, 2))
    path.write_text("symbol,ts_event,close\n" + rows, encoding="utf-8")
    with pytest.raises(TableFileError, match="SPY: its bars are most often 2 minutes apart within a day"):
        BarFile.survey(path)


def test_gaps_longer_than_the_timeframe_are_normal(tmp_path: Path) -> None:
    # Minute bars with missing minutes and a night between two sessions.
    times = ["2026-03-02 14:30", "2026-03-02 14:31", "2026-03-02 14:32", "2026-03-02 14:40", "2026-03-03 14:30"]
    path = tmp_path / "gappy.csv"
    path.write_text("symbol,ts_event,close\n" + "".join(f"SPY,{t},500\n" for t in times), encoding="utf-8")
    bars = BarFile.survey(path)
    assert bars.inferred == {"SPY": "1Min"}
    assert (bars.first, bars.last) == (utc(2026, 3, 2, 14, 30), utc(2026, 3, 3, 14, 30))


def test_a_file_without_one_usable_row_is_refused_by_the_survey(tmp_path: Path) -> None:
    path = tmp_path / "all_nan.parquet"
    nan = float("nan")
    pl.DataFrame(
        {"symbol": ["SPY"] * 3, "ts_event": [date(2026, 3, d) for d in (2, 3, 4)], "close": [nan] * 3}
    ).write_parquet(path)
    with pytest.raises(TableFileError, match="none of its 3 rows has a symbol, a time and a positive close"):
        BarFile.survey(path)


def test_a_time_beyond_any_calendar_is_quarantined_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "far.parquet"
    pl.DataFrame(
        {
            "symbol": ["SPY", "SPY"],
            "ts_event": pl.Series([10**17, 1_772_460_000 * 10**6]).cast(pl.Datetime("us", "UTC")),  # 5138; 2026
            "close": [1.0, 1.0],
        }
    ).write_parquet(path)
    batch = read(path)
    assert batch.tables["bars"]["ts_event"].to_list() == [utc(2026, 3, 2, 14)]
    [far] = batch.rejected
    assert "not between 1900-01-01 and 2200-01-01" in far.reason and "5138-11-16" in far.payload


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "no_close.csv",
            "symbol,ts_event,open,high,low\nSPY,2026-03-02 14:30,1,1,1\n",
            "missing column(s) close",
        ),
        ("words.csv", "symbol,ts_event,open,high,low,close,volume\nSPY,2026-03-02 14:30,1,1,x,1,1\n", "does not hold"),
        (
            "two_hourly.csv",
            "symbol,ts_event,open,high,low,close,volume,timeframe\nSPY,2026-03-02,1,1,1,1,1,2Hour\n",
            "timeframe(s) 2Hour; use 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day",
        ),
        ("bars.json", "[]", "data comes as .parquet or .csv"),
        ("broken.parquet", "not parquet", "unreadable"),
    ],
)
def test_a_file_that_is_not_bars_is_refused_with_what_to_fix(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TableFileError, match="bar-file: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        read(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TableFileError, match="no such file"):
        BarFile.survey(tmp_path / "absent.csv")
