"""The ingestion flows under a real (temporary) Prefect server, feeds served by local HTTP servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pytest
from prefect.client.orchestration import get_client
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.cme import MARGINS_PATH, margins_query
from flows.ingest import ingest_all, ingest_binance, ingest_cme
from hydra.settings import load_settings
from tasks.ingest import FeedFailed

DATA = Path(__file__).resolve().parents[1] / "data" / "binance"
CME = Path(__file__).resolve().parents[1] / "data" / "cme"
WAREHOUSE = Path("data/hydra.duckdb")
pytestmark = pytest.mark.usefixtures("prefect_harness")


def query(sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def by_symbol(prefix: str) -> Callable[[Request], Response]:
    def respond(request: Request) -> Response:
        symbol = request.args["symbol"].lower()
        return Response((DATA / f"{prefix}_{symbol}.json").read_text(), content_type="application/json")

    return respond


def serve_binance(server: HTTPServer) -> None:
    server.expect_request("/fapi/v1/fundingRate").respond_with_handler(by_symbol("funding_rate"))
    server.expect_request("/fapi/v1/premiumIndex").respond_with_handler(by_symbol("premium_index"))
    server.expect_request("/fapi/v1/openInterest").respond_with_handler(by_symbol("open_interest"))
    server.expect_request("/futures/data/openInterestHist").respond_with_handler(by_symbol("open_interest_hist"))


@pytest.fixture
def paper_binance(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("HYDRA_MODE", "paper")
    monkeypatch.setenv("HYDRA_FEEDS__BINANCE__BASE_URL", httpserver.url_for("").rstrip("/"))
    monkeypatch.setenv("HYDRA_FEEDS__MAX_WAIT_S", "1")
    monkeypatch.setenv("HYDRA_FEEDS__FETCH_RETRY_DELAYS_S", "[0]")
    return httpserver


def runs_of(feed: str) -> list[tuple[object, ...]]:
    return query(
        "SELECT status, rows_loaded, rows_quarantined, error FROM ingestion_runs WHERE feed = ? ORDER BY started_at",
        [feed],
    )


def test_sim_ingest_all_loads_every_feed_and_publishes_artifacts() -> None:
    window = (datetime(2026, 3, 2, 12, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))  # spans US market hours
    outcome = ingest_all(start=window[0], end=window[1])
    assert set(outcome) == {
        "bars",
        "binance",
        "cme",
        "metal_premium",
        "macro_calendar",
        "github",
        "narrative",
        "vol_credit",
    }
    assert set(outcome.values()) == {"Completed"}
    statuses = dict(query("SELECT feed, status FROM ingestion_runs"))
    assert len(statuses) == 8 and set(statuses.values()) == {"ok"}
    bars = query("SELECT count(*), count(DISTINCT symbol) FROM bars")[0]
    assert bars[1] == 19 and bars[0] > 19 * 100
    ingest_all(start=window[0], end=window[1])  # a re-run adds nothing
    assert query("SELECT count(*) FROM bars")[0] == (bars[0],)

    async def artifact_keys() -> set[str]:
        async with get_client() as client:
            return {artifact.key for artifact in await client.read_artifacts() if artifact.key}

    import asyncio

    assert {"ingest-bars", "ingest-binance", "ingest-vol-credit"} <= asyncio.run(artifact_keys())


def test_a_real_feed_flow_loads_through_the_real_client(paper_binance: HTTPServer) -> None:
    serve_binance(paper_binance)
    result = ingest_binance()
    assert result["status"] == "ok" and result["quarantined"] == 0
    assert result["loaded"]["funding_rates"] > 0 and result["loaded"]["open_interest"] > 0
    counts = query("SELECT (SELECT count(*) FROM funding_rates), (SELECT count(*) FROM open_interest)")[0]
    ingest_binance()
    assert query("SELECT (SELECT count(*) FROM funding_rates), (SELECT count(*) FROM open_interest)")[0] == counts
    assert [row[0] for row in runs_of("binance")] == ["ok", "ok"]


def test_a_feed_refused_on_every_part_fails_and_one_refused_in_part_is_degraded(paper_binance: HTTPServer) -> None:
    blocked = json.loads((DATA / "error_451.json").read_text())
    paper_binance.expect_request("/fapi/v1/fundingRate").respond_with_json(blocked, status=451)
    for path in ("/fapi/v1/premiumIndex", "/fapi/v1/openInterest", "/futures/data/openInterestHist"):
        for _ in range(4):  # two symbols, two tries
            paper_binance.expect_oneshot_request(path).respond_with_json(blocked, status=451)
    # Every part geo-blocked: nothing loaded, the run fails (and `hydra ingest` exits 5), retried once.
    with pytest.raises(FeedFailed, match=r"feed binance failed: .*HTTP 451"):
        ingest_binance()
    [(status, loaded, quarantined, error)] = runs_of("binance")
    assert (status, loaded, quarantined) == ("failed", 0, 0) and "HTTP 451" in str(error)

    serve_binance(paper_binance)  # now only the funding history is blocked
    result = ingest_binance()  # the flow completes: one refused part must not fail the schedule
    assert result["status"] == "degraded"
    assert [row[0] for row in runs_of("binance")] == ["failed", "degraded"]


def test_without_fetch_retries_a_failed_feed_is_asked_once_and_left_to_its_next_run(
    paper_binance: HTTPServer,
) -> None:
    blocked = json.loads((DATA / "error_451.json").read_text())
    for path in ("/fapi/v1/fundingRate", "/fapi/v1/premiumIndex", "/fapi/v1/openInterest"):
        paper_binance.expect_request(path).respond_with_json(blocked, status=451)
    paper_binance.expect_request("/futures/data/openInterestHist").respond_with_json(blocked, status=451)

    def asked() -> int:
        return len(paper_binance.log)

    with pytest.raises(FeedFailed):
        ingest_binance(retry_fetches=False)  # the paper loop's ingestion: the minute's cycle must not wait
    once = asked()
    with pytest.raises(FeedFailed):
        ingest_binance()  # a scheduled run: retried once ([0] delays)
    assert once > 0 and asked() - once == 2 * once
    assert [row[0] for row in runs_of("binance")] == ["failed", "failed"]


def test_a_malformed_answer_is_quarantined_and_a_retry_loads_exactly_what_is_missing(
    paper_binance: HTTPServer,
) -> None:
    paper_binance.expect_oneshot_request("/fapi/v1/fundingRate").respond_with_data(
        '[{"symbol": "BTCUSDT", "fundingRate": "0.0001"', content_type="application/json"
    )
    serve_binance(paper_binance)
    first = ingest_binance()
    assert first["status"] == "degraded" and first["quarantined"] == 1
    assert str(query("SELECT reason FROM quarantine")[0][0]).startswith("funding BTCUSDT: binance")
    loaded_before = query("SELECT count(*) FROM funding_rates")[0][0]
    retry = ingest_binance()
    assert retry["status"] == "ok"
    assert query("SELECT count(*) FROM funding_rates")[0][0] > loaded_before
    assert (
        query("SELECT count(*) FROM funding_rates")[0][0]
        == query("SELECT count(DISTINCT (symbol, ts_event)) FROM funding_rates")[0][0]
    )


def test_one_failing_feed_does_not_stop_the_others(paper_binance: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    paper_binance.expect_request("/fapi/v1/fundingRate").respond_with_data("not json at all", status=200)
    paper_binance.expect_request("/fapi/v1/premiumIndex").respond_with_data("<html>", status=200)
    paper_binance.expect_request("/fapi/v1/openInterest").respond_with_data("<html>", status=200)
    paper_binance.expect_request("/futures/data/openInterestHist").respond_with_data("<html>", status=200)
    paper_binance.expect_request("/api/global/us_indices/daily_prices/VIX_History.csv").respond_with_data(
        "DATE,OPEN,HIGH,LOW,CLOSE\n03/02/2026,19.1,21.3,18.9,20.4\n03/03/2026,20.4,22.0,19.8,21.7\n",
        content_type="text/csv",
    )
    monkeypatch.setenv("HYDRA_FEEDS__CBOE__BASE_URL", paper_binance.url_for("").rstrip("/"))
    with pytest.raises(Exception, match="feeds failed: binance"):
        ingest_all(feeds=["binance", "vol_credit"])
    statuses = dict(query("SELECT feed, status FROM ingestion_runs"))
    assert statuses == {"binance": "failed", "vol_credit": "ok"}
    assert query("SELECT series, value FROM market_series ORDER BY ts_event") == [("VIX", 20.4), ("VIX", 21.7)]
    assert query("SELECT count(*) FROM quarantine WHERE feed = 'binance'")[0][0] >= 1


def test_cme_advisories_load_from_their_pdfs_and_a_refused_pdf_is_quarantined(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    advisories = ["/notices/clearing/2020/06/Chadv20-236.html", "/notices/clearing/2026/03/Chadv26-080.html"]
    monkeypatch.setenv("HYDRA_MODE", "paper")
    monkeypatch.setenv("HYDRA_FEEDS__CME__BASE_URL", httpserver.url_for("").rstrip("/"))
    monkeypatch.setenv("HYDRA_FEEDS__CME__ADVISORY_URLS", json.dumps(advisories))
    monkeypatch.setenv("HYDRA_FEEDS__MAX_WAIT_S", "1")
    monkeypatch.setenv("HYDRA_FEEDS__FETCH_RETRY_DELAYS_S", "[0]")
    for product in ("GC", "SI"):
        httpserver.expect_request(MARGINS_PATH, query_string=urlencode(margins_query(product, 1))).respond_with_data(
            (CME / f"margins_{product.lower()}_2026-03-04.json").read_text(), content_type="application/json"
        )
    for advisory, page in zip(advisories, ["Chadv20-236_pdf_only.html", "Chadv26-080_pdf_only.html"], strict=True):
        httpserver.expect_request(advisory).respond_with_data((CME / page).read_text(), content_type="text/html")
    httpserver.expect_request("/notices/clearing/2020/06/Chadv20-236.pdf").respond_with_data(
        (CME / "Chadv20-236.pdf").read_bytes(), content_type="application/pdf"
    )
    httpserver.expect_request("/notices/clearing/2026/03/Chadv26-080.pdf").respond_with_data(
        "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD></HTML>", status=403, content_type="text/html"
    )

    result = ingest_cme()

    assert result["status"] == "ok"
    assert result["loaded"]["margin_notices"] == 4
    assert query("SELECT notice_id, product, tier, new_maintenance FROM margin_notices ORDER BY product, tier") == [
        ("Chadv20-236", "GC", "1", 9_500.0),
        ("Chadv20-236", "GC", "2", 9_000.0),
        ("Chadv20-236", "GC", "3", 8_000.0),
        ("Chadv20-236", "SI", "1", 7_500.0),
    ]
    assert result["quarantined"] == 2
    assert sorted(str(reason) for (reason,) in query("SELECT reason FROM quarantine WHERE feed = 'cme'")) == [
        "advisory Chadv20-236 row: not an amount: 'TBD'",
        "advisory Chadv26-080: no margin table in the HTML page and its PDF could not be fetched:"
        " cme: GET /notices/clearing/2026/03/Chadv26-080.pdf: HTTP 403"
        " <HTML><HEAD><TITLE>Access Denied</TITLE></HEAD></HTML>",
    ]


def test_a_backfill_through_the_flows_loads_bars_slice_by_slice_and_reports_what_binance_lacks(
    alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_feeds import AlpacaBars, serve_bars
    from fake_feeds import serve_binance as serve_binance_history

    base = alpaca_server.url_for("").rstrip("/")
    for name, value in {
        "HYDRA_MODE": "paper",
        "HYDRA_FEEDS__ALPACA_DATA__BASE_URL": base,
        "HYDRA_FEEDS__ALPACA_DATA__TIMEFRAMES": '["1Day"]',
        "HYDRA_FEEDS__ALPACA_DATA__BACKFILL_SLICE_DAYS": "10",
        "HYDRA_FEEDS__BINANCE__BASE_URL": base,
        "HYDRA_FEEDS__FETCH_RETRY_DELAYS_S": "[0]",
        "ALPACA_API_KEY": "PKTEST7Q2M4X9ZKEY",
        "ALPACA_SECRET_KEY": "sk-test-3vN8wQpL0rT5yU2iO9aS",
    }.items():
        monkeypatch.setenv(name, value)
    serve_bars(alpaca_server, AlpacaBars())
    serve_binance_history(alpaca_server)
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)

    outcome = ingest_all(["binance", "bars"], start, end)

    assert outcome == {"binance": "Completed", "bars": "Completed"}
    spans = {
        datetime.fromisoformat(sent.args["end"]) - datetime.fromisoformat(sent.args["start"])
        for sent, _ in alpaca_server.log
        if sent.path.endswith("/bars")
    }
    assert max(spans) == timedelta(days=10)  # six slices of ten days, each its own requests
    runs = query("SELECT feed, status, window_start, window_end, rows_loaded, notes FROM ingestion_runs ORDER BY feed")
    settings = load_settings()
    symbols = (*settings.engine.watchlist, *settings.feeds.alpaca_data.extra_symbols)
    bars = sum(len(AlpacaBars.times(symbol, "1Day", start, end - timedelta(seconds=1))) for symbol in symbols)
    assert query("SELECT count(*) FROM bars")[0][0] == bars == 2 * 60 + 18 * 44  # crypto daily, stocks on weekdays
    assert [row[:5] for row in runs] == [
        ("bars", "ok", start, end, bars),
        ("binance", "ok", start, end, query("SELECT count(*) FROM funding_rates")[0][0]),
    ]
    history_note = "binance open interest history BTCUSDT: the source keeps 30 days;"
    assert runs[0][5] == [] and f"{history_note} nothing of 2024-01-01..2024-03-01 available" in runs[1][5]
