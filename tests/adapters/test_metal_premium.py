"""Shanghai gold premium: SGE benchmark against LBMA gold PM, served by a local HTTP server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from adapters.feed import FeedError, FeedUnavailable, MalformedResponse
from adapters.http import HttpClient
from adapters.metal_premium import (
    LBMA_GOLD_PM_PATH,
    SGE_PATH,
    SgeFixing,
    compute_premiums,
    fetch_shanghai_premium,
    gold_silver_ratio,
    parse_lbma_gold_pm,
    parse_sge_benchmark,
)
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parents[1] / "data" / "metal_premium"
INGESTED = datetime(2024, 1, 9, 16, 0, tzinfo=UTC)
# CNY per USD. 2024-01-05 is missing on purpose; 2024-01-09 is after the last LBMA price.
USD_CNY = {
    date(2024, 1, 2): 7.10,
    date(2024, 1, 3): 7.1361,
    date(2024, 1, 4): 7.1385,
    date(2024, 1, 8): 7.1512,
    date(2024, 1, 9): 7.1490,
}


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def recorded_json(name: str) -> Any:
    return json.loads(recorded(name))


def make_client(httpserver: HTTPServer, feed: str) -> HttpClient:
    return HttpClient(
        feed=feed, base_url=httpserver.url_for("").rstrip("/"), user_agent="HYDRA tests", backoff_s=0.01, max_wait_s=2
    )


def serve(httpserver: HTTPServer, sge: str, lbma: str) -> None:
    httpserver.expect_request(SGE_PATH, method="POST").respond_with_data(recorded(sge), content_type="text/html")
    httpserver.expect_request(LBMA_GOLD_PM_PATH, method="GET").respond_with_data(
        recorded(lbma), content_type="application/json"
    )


def fetch(httpserver: HTTPServer, usd_cny: dict[date, float] = USD_CNY) -> Any:
    return fetch_shanghai_premium(
        make_client(httpserver, "sge"), make_client(httpserver, "lbma"), usd_cny, ingested_at=INGESTED
    )


# --- parsing ---------------------------------------------------------------------------


def test_sge_timestamps_are_beijing_midnight_and_fixings_are_10_15_and_14_15_beijing() -> None:
    fixings, rejected = parse_sge_benchmark(recorded_json("sge_dayily_jzj.json"))
    assert rejected == []
    assert len(fixings) == 12
    first_am, first_pm = fixings[0], fixings[1]
    # 1704124800000 ms = 2024-01-01T16:00Z, + 8 h = 2024-01-02 00:00 in Beijing.
    assert first_am == SgeFixing(date(2024, 1, 2), "AM", 482.52)
    assert first_pm == SgeFixing(date(2024, 1, 2), "PM", 483.04)
    assert first_am.ts_event == datetime(2024, 1, 2, 2, 15, tzinfo=UTC)
    assert first_pm.ts_event == datetime(2024, 1, 2, 6, 15, tzinfo=UTC)
    assert fixings[3] == SgeFixing(date(2024, 1, 3), "PM", 481.20)  # the price came as a string


def test_sge_bad_points_are_rejected_with_reasons() -> None:
    fixings, rejected = parse_sge_benchmark(recorded_json("sge_dayily_jzj_dirty.json"))
    assert fixings == [SgeFixing(date(2024, 1, 2), "AM", 482.52), SgeFixing(date(2024, 1, 2), "PM", 483.04)]
    assert sorted(item.reason for item in rejected) == [
        "SGE AM fixing: non-positive price: 0",
        "SGE AM fixing: not a [ms, price] pair",
        "SGE AM fixing: not a [ms, price] pair",
        "SGE AM fixing: not a millisecond timestamp: -5",
        "SGE AM fixing: price is not a number: 'abc'",
        "SGE AM fixing: price is not finite: 'NaN'",
        "SGE AM fixing: second price for 2024-01-02 (482.52 kept)",
    ]


@pytest.mark.parametrize("payload", [[], {"zp": []}, {"zp": [], "wp": None}, {"error": "busy"}, None])
def test_sge_of_the_wrong_shape_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse, match="'zp' and 'wp'"):
        parse_sge_benchmark(payload)


def test_empty_arrays_give_no_fixings() -> None:
    assert parse_sge_benchmark(recorded_json("sge_dayily_jzj_empty.json")) == ([], [])
    assert parse_lbma_gold_pm([]) == ({}, [])


def test_lbma_reads_the_usd_price_only() -> None:
    prices, rejected = parse_lbma_gold_pm(recorded_json("lbma_gold_pm.json"))
    assert rejected == []
    assert prices[date(1968, 4, 1)] == 37.7  # EUR is 0 before 1999: not read
    assert prices[date(2024, 1, 5)] == 2042.90  # came as a string
    assert date(2024, 1, 4) not in prices


def test_lbma_bad_entries_are_rejected() -> None:
    payload = [
        {"d": "2024-01-02", "v": [2064.4, 1622.66, 1875.4]},
        {"d": "2024-01-03", "v": [None, 1613.83, 1869.98]},
        {"d": "2024-13-01", "v": [2042.8, 1613.83, 1869.98]},
        {"d": "2024-01-04", "v": []},
        {"d": "2024-01-05", "v": [-1, 0, 0]},
    ]
    prices, rejected = parse_lbma_gold_pm(payload)
    assert prices == {date(2024, 1, 2): 2064.4}
    assert [item.reason for item in rejected] == [
        "LBMA gold PM: no price: None",
        "LBMA gold PM: not a YYYY-MM-DD date: '2024-13-01'",
        "LBMA gold PM: no price list 'v'",
        "LBMA gold PM: non-positive price: -1",
    ]


def test_lbma_of_the_wrong_shape_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="list"):
        parse_lbma_gold_pm({"d": "2024-01-02"})


# --- premiums --------------------------------------------------------------------------


def test_fixings_outside_the_rates_given_wait_for_theirs_and_a_gap_inside_is_rejected() -> None:
    # FRED publishes USD/CNY about a week late: the newest fixings are pending, not quarantined
    # (they were, and the cursor then moved past them for good), and so are fixings before the
    # first rate given, the span the caller read its rates over.
    days = [date(2024, 1, day) for day in (2, 3, 4, 5, 8)]
    fixings = [SgeFixing(day, "AM", 482.52) for day in days]
    reference = dict.fromkeys(days, 2064.40)
    rates = {date(2024, 1, 3): 7.10, date(2024, 1, 5): 7.12}

    batch = compute_premiums(fixings, reference, rates, ingested_at=INGESTED)

    stored = batch.tables["metal_premiums"]["ts_event"].dt.date().to_list()
    assert stored == [date(2024, 1, 3), date(2024, 1, 5)]
    assert [item.reason for item in batch.rejected] == ["no USD/CNY rate for 2024-01-04"]


def test_premium_computed_by_hand() -> None:
    fixings = [SgeFixing(date(2024, 1, 2), "AM", 482.52)]
    batch = compute_premiums(fixings, {date(2024, 1, 2): 2064.40}, USD_CNY, ingested_at=INGESTED)
    [row] = batch.tables["metal_premiums"].to_dicts()
    # 482.52 CNY/g x 31.1034768 g/oz = 15008.0496 CNY/oz
    # 15008.0496 CNY/oz / 7.10 CNY per USD = 2113.8098 USD/oz
    # premium = 2113.8098 - 2064.40 (LBMA PM) = 49.4098 USD/oz
    # premium_pct = 49.4098 / 2064.40 x 100 = 2.3934 %
    assert row["sge_usd_per_oz"] == pytest.approx(2113.8098, abs=1e-4)
    assert row["premium_usd_per_oz"] == pytest.approx(49.4098, abs=1e-4)
    assert row["premium_pct"] == pytest.approx(2.3934, abs=1e-4)
    assert row["sge_cny_per_gram"] == 482.52
    assert row["usd_cny"] == 7.10
    assert row["ref_usd_per_oz"] == 2064.40
    assert row["session"] == "AM"
    assert row["ts_event"] == datetime(2024, 1, 2, 2, 15, tzinfo=UTC)  # 10:15 Beijing
    assert row["ts_ingested"] == INGESTED
    assert row["source"] == "sge-benchmark/lbma-pm"
    assert batch.rejected == []


def test_an_implausible_premium_is_rejected() -> None:
    # A price per kilogram where grams were expected: 482520 CNY/kg read as CNY/g.
    fixings = [SgeFixing(date(2024, 1, 2), "AM", 482_520.0)]
    batch = compute_premiums(fixings, {date(2024, 1, 2): 2064.40}, USD_CNY, ingested_at=INGESTED)
    assert batch.tables["metal_premiums"].is_empty()
    [rejected] = batch.rejected
    assert rejected.reason.startswith("premium of 102293.") and "exceeds +/-25%" in rejected.reason


def test_a_bad_exchange_rate_is_rejected() -> None:
    fixings = [SgeFixing(date(2024, 1, 2), "AM", 482.52)]
    batch = compute_premiums(fixings, {date(2024, 1, 2): 2064.40}, {date(2024, 1, 2): 0.0}, ingested_at=INGESTED)
    assert [item.reason for item in batch.rejected] == ["USD/CNY rate for 2024-01-02 is not a positive number: 0.0"]


def test_fetch_joins_sge_with_lbma_and_usd_cny(httpserver: HTTPServer) -> None:
    serve(httpserver, "sge_dayily_jzj.json", "lbma_gold_pm.json")
    batch = fetch(httpserver)
    frame = batch.tables["metal_premiums"]
    # 2024-01-02, -03 and -08 have all three prices; -04 has no LBMA PM, -05 no USD/CNY
    # rate, and -09 is after the last LBMA price: London has not fixed yet, nothing to say.
    assert frame.select(pl.col("ts_event").dt.date(), "session").rows() == [
        (date(2024, 1, 2), "AM"),
        (date(2024, 1, 2), "PM"),
        (date(2024, 1, 3), "AM"),
        (date(2024, 1, 3), "PM"),
        (date(2024, 1, 8), "AM"),
        (date(2024, 1, 8), "PM"),
    ]
    # 2024-01-08 PM: 480.60 x 31.1034768 / 7.1512 = 2090.3248; - 2027.80 = 62.5248 USD/oz = 3.0834 %
    last = frame.row(-1, named=True)
    assert last["premium_usd_per_oz"] == pytest.approx(62.5248, abs=1e-4)
    assert last["premium_pct"] == pytest.approx(3.0834, abs=1e-4)
    assert [item.reason for item in batch.rejected] == [
        "no LBMA gold PM for 2024-01-04",
        "no LBMA gold PM for 2024-01-04",
        "no USD/CNY rate for 2024-01-05",
        "no USD/CNY rate for 2024-01-05",
    ]
    assert json.loads(batch.rejected[0].payload) == {
        "date": "2024-01-04",
        "session": "AM",
        "sge_cny_per_gram": 478.91,
    }
    assert httpserver.log[0][0].method == "POST"


def test_since_bounds_the_history(httpserver: HTTPServer) -> None:
    serve(httpserver, "sge_dayily_jzj.json", "lbma_gold_pm.json")
    batch = fetch_shanghai_premium(
        make_client(httpserver, "sge"),
        make_client(httpserver, "lbma"),
        USD_CNY,
        ingested_at=INGESTED,
        since=date(2024, 1, 8),
    )
    assert batch.tables["metal_premiums"].height == 2
    assert batch.rejected == []


def test_empty_sge_arrays_give_an_empty_batch(httpserver: HTTPServer) -> None:
    serve(httpserver, "sge_dayily_jzj_empty.json", "lbma_gold_pm.json")
    batch = fetch(httpserver)
    assert batch.row_count == 0
    assert batch.rejected == []
    assert batch.tables["metal_premiums"].columns[:2] == ["ts_event", "session"]


def test_empty_lbma_history_is_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SGE_PATH, method="POST").respond_with_data(recorded("sge_dayily_jzj.json"))
    httpserver.expect_request(LBMA_GOLD_PM_PATH).respond_with_json([])
    with pytest.raises(MalformedResponse, match="no usable price"):
        fetch(httpserver)


def test_sge_403_is_feed_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SGE_PATH, method="POST").respond_with_data("Forbidden", status=403)
    with pytest.raises(FeedUnavailable, match="HTTP 403"):
        fetch(httpserver)


def test_sge_html_instead_of_json_is_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SGE_PATH, method="POST").respond_with_data(
        "<html><body>系统繁忙，请稍后再试</body></html>", content_type="text/html"
    )
    with pytest.raises(MalformedResponse, match="not JSON") as raised:
        fetch(httpserver)
    assert raised.value.feed == "sge"


def test_lbma_server_errors_become_feed_unavailable_after_retries(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SGE_PATH, method="POST").respond_with_data(recorded("sge_dayily_jzj.json"))
    httpserver.expect_request(LBMA_GOLD_PM_PATH).respond_with_data("upstream timeout", status=504)
    with pytest.raises(FeedError) as raised:
        fetch(httpserver)
    assert isinstance(raised.value, FeedUnavailable)
    assert raised.value.feed == "lbma"
    assert sum(1 for request, _ in httpserver.log if request.path == LBMA_GOLD_PM_PATH) == 4  # 1 + 3 retries


def test_loading_twice_gives_the_same_rows(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve(httpserver, "sge_dayily_jzj.json", "lbma_gold_pm.json")
    batch = fetch(httpserver)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    migrate(warehouse)

    def count() -> int:
        with warehouse.connect() as con:
            row = con.execute("SELECT count(*) FROM metal_premiums").fetchone()
        assert row is not None
        return int(row[0])

    upsert(warehouse, batch.tables)
    first = count()
    upsert(warehouse, batch.tables)
    assert count() == first == 6


# --- gold/silver ratio -----------------------------------------------------------------


def test_gold_silver_ratio_aligns_on_ts_event() -> None:
    t = [datetime(2026, 3, 2, 15, minute, tzinfo=UTC) for minute in range(4)]
    bars = pl.DataFrame(
        {
            "symbol": ["GLD", "SLV", "GLD", "SLV", "GLD", "SLV", "SPY", "SLV", "GLD"],
            "timeframe": ["1Min"] * 9,
            "ts_event": [t[0], t[0], t[1], t[1], t[2], t[2], t[3], t[3], t[3]],
            "close": [400.0, 50.0, 401.0, 0.0, 402.0, 40.2, 600.0, 45.0, 405.0],
        }
    ).sample(fraction=1.0, shuffle=True, seed=7)
    ratio = gold_silver_ratio(bars)
    # t1 dropped: SLV closed at 0 (a bad bar); t0 = 400 / 50, t2 = 402 / 40.2, t3 = 405 / 45
    assert ratio.select("ts_event", "ratio").rows() == [(t[0], 8.0), (t[2], 10.0), (t[3], 9.0)]
    assert ratio.columns == ["timeframe", "ts_event", "gold_close", "silver_close", "ratio"]


def test_gold_silver_ratio_of_no_bars_is_empty() -> None:
    empty = pl.DataFrame(
        schema={"symbol": pl.Utf8, "timeframe": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "close": pl.Float64}
    )
    ratio = gold_silver_ratio(empty)
    assert ratio.is_empty()
    assert ratio.columns == ["timeframe", "ts_event", "gold_close", "silver_close", "ratio"]
