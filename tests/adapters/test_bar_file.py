"""A user's bar file (CSV or Parquet) read as warehouse bars, or refused with what to fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from adapters.bar_file import BarFileError, read_bar_file

CSV = """Symbol,Timestamp,Open,High,Low,Close,Volume
SPY,2026-03-02 14:30:00,500,501,499,500.5,1000
SPY,2026-03-02 14:31:00,500.5,502,500,501.5,1200
BTC/USD,2026-03-02T14:30:00+01:00,90000,90100,89900,90050,3.5
"""

HEADER = "symbol,ts_event,open,high,low,close,volume"


def test_a_csv_becomes_bars_known_when_they_close(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(CSV.replace("+01:00", ""), encoding="utf-8")
    bars = read_bar_file(path).tables["bars"]
    assert bars.columns[:3] == ["symbol", "timeframe", "ts_event"]
    first = bars.row(0, named=True)
    assert first["ts_event"] == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # naive means UTC
    assert first["ts_ingested"] == first["ts_event"] + timedelta(minutes=1)
    assert (first["timeframe"], first["source"], first["close"]) == ("1Min", "file:mine.csv", 500.5)
    assert bars.height == 3


def test_a_parquet_file_keeps_its_time_zone_and_daily_bars_are_known_a_day_later(tmp_path: Path) -> None:
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
    [bar] = read_bar_file(path).tables["bars"].to_dicts()
    assert bar["ts_event"] == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    assert bar["ts_ingested"] == bar["ts_event"] + timedelta(days=1)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "no_volume.csv",
            "symbol,ts_event,open,high,low,close\nSPY,2026-03-02 14:30,1,1,1,1\n",
            "missing column(s) volume",
        ),
        ("words.csv", "symbol,ts_event,open,high,low,close,volume\nSPY,2026-03-02 14:30,1,1,x,1,1\n", "does not hold"),
        (
            "hourly.csv",
            "symbol,ts_event,open,high,low,close,volume,timeframe\nSPY,2026-03-02,1,1,1,1,1,1Hour\n",
            "1Hour",
        ),
        ("bars.json", "[]", "bars come as .parquet or .csv"),
        ("broken.parquet", "not parquet", "unreadable"),
    ],
)
def test_a_file_that_is_not_bars_is_refused_with_what_to_fix(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BarFileError, match="bar-file: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        read_bar_file(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match="no such file"):
        read_bar_file(tmp_path / "absent.csv")
