"""Incremental `hydra ingest` in paper mode through local servers in the sources' real formats
(tests/fake_feeds.py): each part resumes from its own cursor, a run's status says how many of
its parts failed, and a first full ingest of every feed loads in dependency order with nothing
quarantined (issue 16, items 5, 9, 10 and 11)."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import polars as pl
import pytest
from fake_feeds import (
    DATA,
    NOW,
    REPO,
    REPO_ETAG,
    AlpacaBars,
    GitHub,
    fred_release_dates,
    lbma_history,
    repo,
    serve_bars,
    serve_binance,
    serve_fred_and_cboe,
    sge_history,
    weekdays,
)
from pytest_httpserver import HTTPServer
from test_backfill import context, query, requests_to, serve_rss

from adapters.cme import MARGINS_PATH, margins_query
from adapters.tables import TABLE_SCHEMAS
from hydra.ingestion import ingest
from hydra.settings import ConfigError
from hydra.sources import FEEDS, DependencyCycle, FeedRequest, fetch_feed, in_dependency_order
from warehouse.load import upsert


def incremental(feed: str, now: datetime = NOW) -> FeedRequest:
    return FeedRequest(feed, now=now)


def bar_row(symbol: str, at: datetime) -> pl.DataFrame:
    row = {"symbol": symbol, "timeframe": "1Min", "ts_event": at, "open": 100.0, "high": 101.0, "low": 99.0}
    row |= {"close": 100.5, "volume": 1200.0, "trade_count": 12, "vwap": 100.2, "source": "alpaca-iex"}
    return pl.DataFrame([row | {"ts_ingested": at}], schema=TABLE_SCHEMAS["bars"])


# --- item 5: one cursor per part ------------------------------------------------------------


def test_a_symbol_whose_funding_timed_out_resumes_from_its_own_history_not_anothers(paper: HTTPServer) -> None:
    # Issue 16: BTCUSDT timed out while ETHUSDT loaded; with one cursor for every symbol, each
    # later run asked BTC only for what came after ETH's newest print: 0 BTC rows for good.
    binance = serve_binance(paper)
    binance.timing_out.add("BTCUSDT")
    loaded = context()

    first = ingest(loaded, incremental("binance"))
    binance.timing_out.clear()
    second = ingest(loaded, incremental("binance", NOW + timedelta(minutes=5)))

    assert (first.run.status, second.run.status) == ("degraded", "ok")
    counts = dict(query(loaded, "SELECT symbol, count(*) FROM funding_rates GROUP BY symbol"))
    assert counts == {"BTCUSDT": 1000, "ETHUSDT": 1000}  # each symbol's latest page, once
    btc_asked = [s.args.get("startTime") for s in requests_to(paper, "/fapi/v1/fundingRate")]
    assert btc_asked.count(None) == 3  # ETH and BTC on the first run, BTC again on the second


def test_each_market_series_resumes_from_its_own_newest_day(paper: HTTPServer) -> None:
    serve_fred_and_cboe(paper)
    loaded = context()
    ingest(loaded, incremental("vol_credit"))
    # The high-yield spread stopped a month ago (a failed part); VIX and USD/CNY are current.
    with loaded.warehouse.connect() as con:
        con.execute(
            "DELETE FROM market_series WHERE series = 'BAMLH0A0HYM2' AND ts_event > ?", [NOW - timedelta(days=30)]
        )
    paper.clear_log()

    ingest(loaded, incremental("vol_credit", NOW + timedelta(days=1)))

    asked = {s.args["series_id"]: s.args["observation_start"] for s in requests_to(paper, "/fred/series/observations")}
    assert asked["BAMLH0A0HYM2"] <= (NOW - timedelta(days=30)).date().isoformat() < asked["DEXCHUS"]


# --- item 10: a run's status from its parts -------------------------------------------------


def test_a_feed_whose_every_request_failed_to_connect_fails(paper: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("HYDRA_FEEDS__BINANCE__BASE_URL", closed)
    loaded = context()

    outcome = ingest(loaded, incremental("binance"))

    assert outcome.run.status == "failed" and outcome.total_loaded == 0
    assert outcome.run.error is not None and outcome.run.error.count("ConnectionError") == 8  # 4 parts x 2 symbols


def test_a_feed_with_some_parts_failed_is_degraded(paper: HTTPServer) -> None:
    binance = serve_binance(paper)
    binance.timing_out.add("ETHUSDT")

    result = fetch_feed(context(), incremental("binance"))

    assert result.status == "degraded" and result.errors == (
        "funding ETHUSDT: binance: GET /fapi/v1/fundingRate: HTTP 504 after 1 tries",
    )


# --- item 9: dependency order and windows that agree ----------------------------------------


def serve_everything(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_bars(server, AlpacaBars())
    serve_binance(server)
    for product in ("GC", "SI"):
        server.expect_request(MARGINS_PATH, query_string=urlencode(margins_query(product, 1))).respond_with_data(
            (DATA / "cme" / f"margins_{product.lower()}_2026-03-04.json").read_text(), content_type="application/json"
        )
    server.expect_request("/graph/DayilyJzj", method="POST").respond_with_json(sge_history())
    server.expect_request("/json/gold_pm.json").respond_with_json(lbma_history())
    calendars = DATA / "macro_calendar"
    server.expect_request("/schedule/news_release/bls.ics").respond_with_data(
        (calendars / "bls.ics").read_bytes(), content_type="text/calendar"
    )
    server.expect_request("/monetarypolicy/fomccalendars.htm").respond_with_data(
        (calendars / "fomccalendars.htm").read_bytes(), content_type="text/html"
    )
    server.expect_request("/fred/release/dates").respond_with_handler(fred_release_dates)
    server.expect_request(f"/repos/{REPO}/releases").respond_with_handler(GitHub().releases)
    server.expect_request(f"/repos/{REPO}").respond_with_handler(repo)
    serve_rss(server, monkeypatch)
    serve_fred_and_cboe(server)


def test_a_first_full_ingest_loads_every_feed_in_dependency_order_and_quarantines_nothing(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 16: the premium ran before the USD/CNY rates it needs, then asked SGE for its whole
    # history against 60 days of rates (5,342 rows quarantined, 84 loaded); today's VIX row,
    # in CBOE's file while the day trades, was quarantined as dated after its ingestion.
    monkeypatch.setenv("HYDRA_ENGINE__SNAPSHOT__BAR_SESSIONS", "1")  # a first fetch of today's minutes
    serve_everything(paper, monkeypatch)
    loaded = context()

    outcomes = {feed: ingest(loaded, incremental(feed)) for feed in in_dependency_order(FEEDS)}

    assert {feed: outcome.run.status for feed, outcome in outcomes.items()} == dict.fromkeys(FEEDS, "ok")
    assert query(loaded, "SELECT feed, reason FROM quarantine") == []
    assert all(outcome.total_loaded for outcome in outcomes.values())
    # Every fixing the stored rates cover: FRED's newest USD/CNY is Friday's, Monday's fixings wait for theirs.
    fixing_days = len(list(weekdays(date(2016, 4, 19), date(2026, 12, 4))))
    assert query(loaded, "SELECT count(*) FROM metal_premiums") == [(2 * fixing_days,)]
    # Today's VIX closes at 16:15 New York, after NOW: not a close yet, loaded by the next run after it.
    assert query(loaded, "SELECT max(ts_event) FROM market_series WHERE series = 'VIX'") == [
        (datetime(2026, 12, 4, 21, 15, tzinfo=UTC),)
    ]
    ingest(loaded, incremental("vol_credit", datetime(2026, 12, 7, 22, tzinfo=UTC)))
    assert query(loaded, "SELECT max(ts_event) FROM market_series WHERE series = 'VIX'") == [
        (datetime(2026, 12, 7, 21, 15, tzinfo=UTC),)
    ]


def test_feeds_that_depend_on_each_other_in_a_ring_are_a_config_error() -> None:
    ring = {"metal_premium": ("vol_credit",), "vol_credit": ("cme",), "cme": ("metal_premium",)}
    with pytest.raises(DependencyCycle, match="cycle: metal_premium -> vol_credit -> cme -> metal_premium"):
        in_dependency_order(["bars", "metal_premium", "vol_credit", "cme"], ring)
    assert issubclass(DependencyCycle, ConfigError)
    assert in_dependency_order(["metal_premium", "bars", "vol_credit"]) == ["vol_credit", "metal_premium", "bars"]


# --- item 11: GitHub repo stats with ETags --------------------------------------------------


def test_repo_stats_send_the_stored_etag_and_a_304_observes_the_stored_counts_again(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    paper.expect_request(f"/repos/{REPO}/releases").respond_with_handler(GitHub().releases)
    paper.expect_request(f"/repos/{REPO}").respond_with_handler(repo)
    loaded = context()

    first = ingest(loaded, incremental("github"))
    second = ingest(loaded, incremental("github", NOW + timedelta(minutes=10)))

    assert (first.run.status, second.run.status) == ("ok", "ok")
    sent = [s.headers.get("If-None-Match") for s in requests_to(paper, f"/repos/{REPO}")]
    assert sent == [None, REPO_ETAG]
    stored = query(loaded, "SELECT ts_event, stars, forks, open_issues, watchers FROM repo_stats ORDER BY ts_event")
    assert [(t.astimezone(UTC), *counts) for t, *counts in stored] == [
        (NOW, 28473, 4102, 187, 301),
        (NOW + timedelta(minutes=10), 28473, 4102, 187, 301),
    ]
    state = dict(query(loaded, "SELECT key, value FROM feed_state WHERE feed = 'github'"))
    assert state[f"stats-etag:{REPO}"] == REPO_ETAG
    assert f"etag:{REPO}" in state  # the releases' ETag, kept beside it under its own key


# --- bars: one request per class from its symbols' cursors, a new symbol apart ---------------


def test_a_symbol_never_stored_is_fetched_apart_from_those_that_resume(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__TIMEFRAMES", '["1Min"]')
    monkeypatch.setenv("HYDRA_ENGINE__SNAPSHOT__BAR_SESSIONS", "2")  # a first fetch of two sessions
    serve_bars(paper, AlpacaBars())
    loaded = context()
    *resumed, new = [symbol for symbol in loaded.settings.engine.watchlist if "/" not in symbol]
    last = datetime(2026, 12, 7, 14, 50, tzinfo=UTC)
    upsert(loaded.warehouse, {"bars": pl.concat([bar_row(symbol, last) for symbol in resumed])})

    outcome = ingest(loaded, incremental("bars"))

    asked = {(s.args["symbols"], s.args["start"]) for s in requests_to(paper, "/v2/stocks/bars")}
    # The stored symbols resume at the minute after their last bar; the new one's two sessions
    # (from Friday's open) are asked for it alone.
    assert asked == {(",".join(resumed), "2026-12-07T14:51:00+00:00"), (new, "2026-12-04T14:30:00+00:00")}
    assert outcome.run.status == "ok"
