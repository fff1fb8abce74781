"""A user's file of one feed table read as that table's rows, each known no earlier than it could
have been; and a folder of such files (a data bundle), or what to fix."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from adapters.bundle import DataBundle
from adapters.fact_file import FACT_TABLES, FactFile, required_columns
from adapters.feed import FeedBatch
from adapters.narrative import HeadlineMatcher
from adapters.table_file import TableFileError
from core.config import DEFAULT_WATCHLIST
from quality.rules import not_null_columns

MATCHER = HeadlineMatcher.for_watchlist(DEFAULT_WATCHLIST)


def read(path: Path, table: str, rows: int = 100_000) -> FeedBatch:
    batch = FeedBatch(f"{table}-file")
    for chunk in FactFile.open(path, table, MATCHER, not_null_columns(table)).chunks(rows):
        batch.extend(chunk)
    return batch


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def known(path: Path, table: str) -> list[datetime]:
    return read(path, table).tables[table].get_column("ts_ingested").to_list()


def test_a_daily_series_is_known_when_its_day_ends_and_freds_a_day_later(tmp_path: Path) -> None:
    """A VIX close dated 2015-08-24 is not known at that day's open: known at its start (its
    ts_event) it would hand the open the close of the day."""
    path = tmp_path / "market_series.csv"
    path.write_text(
        "Date,Series,Value,Source\n"
        "2015-08-21,VIX,28.03,\n"
        "2015-08-24,VIX,40.74,cboe\n"
        "2015-08-24 20:15:00,VIX,40.74,cboe\n"
        "2015-08-24,BAMLH0A0HYM2,5.9,\n"
        "2015-08-24,VIXCLS,40.74,fred\n",
        encoding="utf-8",
    )
    series = read(path, "market_series").tables["market_series"]
    assert series.get_column("ts_event").to_list()[:2] == [utc(2015, 8, 21), utc(2015, 8, 24)]
    assert series.get_column("ts_ingested").to_list() == [
        utc(2015, 8, 22),
        utc(2015, 8, 25),
        utc(2015, 8, 25),  # stamped at its close: still the end of its day
        utc(2015, 8, 26),  # a series HYDRA has only from FRED
        utc(2015, 8, 26),
    ]
    assert series.get_column("source").to_list()[0] == "file:market_series.csv"


def test_a_stated_ts_ingested_is_kept_and_an_empty_one_follows_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "funding.csv"
    path.write_text(
        "venue,symbol,ts_event,funding_rate,ts_ingested\n"
        "binance-usdm,BTCUSDT,2026-03-02T08:00:00Z,0.0001,2026-03-02T08:00:05Z\n"
        "binance-usdm,BTCUSDT,2026-03-02T16:00:00Z,0.0002,\n",
        encoding="utf-8",
    )
    assert known(path, "funding_rates") == [utc(2026, 3, 2, 8) + timedelta(seconds=5), utc(2026, 3, 2, 16)]


def test_an_economic_event_is_known_a_week_before_it_is_scheduled(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "source": ["bls"],
            "event_type": ["NFP"],
            "ts_event": [utc(2026, 3, 6, 13, 30)],
            "title": ["Employment Situation"],
            "importance": [3],
            "all_day": [False],
        }
    ).write_parquet(path)
    assert known(path, "economic_events") == [utc(2026, 2, 27, 13, 30)]


def test_a_shanghai_premium_is_known_once_londons_pm_price_is_out(tmp_path: Path) -> None:
    """The AM fixing (02:15 UTC) is priced against the LBMA PM of its day: 16:00 London is 16:00
    UTC in winter and 15:00 UTC in summer."""
    path = tmp_path / "metal_premiums.csv"
    header = "ts_event,session,sge_cny_per_gram,usd_cny,sge_usd_per_oz,ref_usd_per_oz,premium_usd_per_oz,premium_pct"
    path.write_text(
        f"{header}\n"
        "2026-01-05T02:15:00Z,AM,620,7.0,2755,2740,15,0.55\n"
        "2026-07-06T06:15:00Z,PM,620,7.0,2755,2740,15,0.55\n",
        encoding="utf-8",
    )
    assert known(path, "metal_premiums") == [utc(2026, 1, 5, 16), utc(2026, 7, 6, 15)]


def test_facts_known_at_their_time(tmp_path: Path) -> None:
    path = tmp_path / "oi.csv"
    path.write_text(
        "venue,symbol,period,timestamp,open_interest\nbinance-usdm,BTCUSDT,5m,2026-03-02T10:05:00Z,81000\n",
        encoding="utf-8",
    )
    assert known(path, "open_interest") == [utc(2026, 3, 2, 10, 5)]


def test_headlines_without_matches_are_matched_in_their_titles_and_a_csv_list_is_split(tmp_path: Path) -> None:
    path = tmp_path / "headlines.csv"
    path.write_text(
        "source,item_id,ts_event,title\n"
        "wire,1,2026-03-02T15:00:00Z,OpenAI ships a model; LZ and Salesforce slide\n"
        "wire,2,2026-03-02T15:05:00Z,\n",
        encoding="utf-8",
    )
    headlines = read(path, "headlines").tables["headlines"]
    assert headlines.select("matched_tickers", "matched_labs").rows() == [(["CRM", "LZ"], ["openai"]), (None, None)]

    stated = tmp_path / "stated.csv"
    stated.write_text(
        "source,item_id,ts_event,title,matched_tickers,matched_labs\n"
        "wire,1,2026-03-02T15:00:00Z,A model ships,LZ|CRM,\n",
        encoding="utf-8",
    )
    assert read(stated, "headlines").tables["headlines"].select("matched_tickers", "matched_labs").rows() == [
        (["LZ", "CRM"], [])
    ]


def test_a_time_beyond_any_calendar_is_quarantined_and_typed_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "notices.csv"
    path.write_text(
        "notice_id,product,rate_type,tier,effective_date,ts_event,unit,change_pct,notice_date\n"
        "N1,GC,OUTRIGHT,1,2026-03-04,2026-03-03T21:30:00Z,USD,12.5,2026-03-03\n"
        "N2,GC,OUTRIGHT,1,2026-03-05,2999-03-03T21:30:00Z,USD,12.5,2026-03-03\n",
        encoding="utf-8",
    )
    batch = read(path, "margin_notices")
    [notice] = batch.tables["margin_notices"].to_dicts()
    assert (notice["effective_date"], notice["notice_date"], notice["change_pct"]) == (
        date(2026, 3, 4),
        date(2026, 3, 3),
        12.5,
    )
    assert (notice["source"], notice["ts_ingested"]) == ("file:notices.csv", utc(2026, 3, 3, 21, 30))
    [rejected] = batch.rejected
    assert (
        "N2" in rejected.payload
        and rejected.reason == "margin_notices: ts_event is not between 1900-01-01 and 2200-01-01"
    )


def test_every_fact_table_has_a_rule_for_when_a_row_is_known_and_documented_required_columns() -> None:
    assert set(FACT_TABLES) == {
        "funding_rates",
        "open_interest",
        "premium_index",
        "economic_events",
        "margin_notices",
        "margin_rates",
        "github_releases",
        "repo_stats",
        "headlines",
        "market_series",
        "metal_premiums",
    }
    # The README's table of the bundle format says what the code requires.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^  \| `(\w+)` \| ([\w, ]+) \|", readme, flags=re.MULTILINE))
    assert {table: documented.get(table) for table in FACT_TABLES} == {
        table: ", ".join(required_columns(table, not_null_columns(table))) for table in FACT_TABLES
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("symbol,ts_event\nBTCUSDT,2026-03-02\n", "missing column(s) funding_rate; funding_rates needs symbol"),
        ("symbol,funding_rate\nBTCUSDT,0.0001\n", "missing column(s) ts_event"),
        ("symbol,ts_event,funding_rate\nBTCUSDT,2026-03-02,lots\n", "a column does not hold what funding_rates needs"),
        ("symbol,ts_event,funding_rate\nBTCUSDT,yesterday,0.0001\n", "funding.csv: unreadable or not what"),
    ],
)
def test_a_file_that_is_not_its_table_is_refused_with_what_to_fix(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "funding.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TableFileError) as refused:
        read(path, "funding_rates")
    assert fragment in str(refused.value) and "\n" not in str(refused.value)


BARS = "symbol,ts_event,close\nSPY,2026-03-02,500\nSPY,2026-03-03,501\n"


def test_a_folder_is_a_bundle_of_its_tables_bars_first(tmp_path: Path) -> None:
    (tmp_path / "BARS.csv").write_text(BARS, encoding="utf-8")
    (tmp_path / "market_series.csv").write_text("date,series,value\n2026-03-02,VIX,18\n", encoding="utf-8")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    bundle = DataBundle.open(tmp_path, DEFAULT_WATCHLIST, not_null_columns)
    assert [(source.table, source.path.name, source.feed) for source in bundle.sources] == [
        ("bars", "BARS.csv", "bar-file"),
        ("market_series", "market_series.csv", "market_series-file"),
    ]
    assert bundle.bars.first == utc(2026, 3, 2) and bundle.load_settings == ""
    (tmp_path / "headlines.csv").write_text("source,item_id,ts_event,title\n", encoding="utf-8")
    assert (
        DataBundle.open(tmp_path, ("SPY", "LZ"), not_null_columns).load_settings == "SPY,LZ"
    )  # headlines are matched against it


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"bars.csv": BARS, "news.csv": ""}, "news.csv: not a table's file; a data folder holds <table>.parquet or"),
        ({"bars.csv": BARS, "headlines.txt": ""}, "headlines.txt: not a table's file"),
        ({"bars.csv": BARS, "bars.parquet": ""}, "two files of bars, bars.csv and bars.parquet: keep one"),
        ({"market_series.csv": "date,series,value\n"}, "no bars file (bars.csv or bars.parquet)"),
        ({"bars.csv": BARS, "repo_stats.csv": "repo,ts_event\n"}, "missing column(s) stars, forks"),
    ],
)
def test_a_bad_folder_is_refused_in_one_line_before_anything_is_read(
    tmp_path: Path, files: dict[str, str], fragment: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(TableFileError) as refused:
        DataBundle.open(tmp_path, DEFAULT_WATCHLIST, not_null_columns)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)
