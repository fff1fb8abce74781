"""`hydra ingest --start --end` in paper mode: every source's history over the window.

Each source is a local HTTP server (tests/fake_feeds.py) that keeps a generated history in
the source's real format and answers the way the source does. A backfill must fetch every
page of the window, store exactly the window's rows once, and say in a note what a source
could not give.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pytest
from fake_feeds import (
    DATA,
    ETAG,
    ITEMS,
    LISTED,
    MS,
    NOW,
    RELEASES,
    REPO,
    AlpacaBars,
    Binance,
    GitHub,
    fred_release_dates,
    lbma_history,
    ms,
    rss,
    serve_bars,
    serve_binance,
    serve_fred_and_cboe,
    sge_history,
    weekdays,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request

from adapters.pacing import shared_pacer
from hydra.context import load_context
from hydra.ingestion import ingest
from hydra.sources import FeedRequest, SourceContext, fetch_feed
from warehouse.load import upsert
from warehouse.migrate import migrate


def context() -> SourceContext:
    loaded = load_context()
    migrate(loaded.warehouse)
    return loaded


def request(feed: str, start: datetime, end: datetime | None = None) -> FeedRequest:
    return FeedRequest(feed, now=NOW, start=start, end=end)


def query(context: SourceContext, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with context.warehouse.connect(read_only=True) as con:
        return con.execute(sql, params).fetchall()


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [sent for sent, _ in server.log if sent.path == path]


def notes_of(context: SourceContext, feed: str) -> list[str]:
    [(notes,)] = query(context, "SELECT notes FROM ingestion_runs WHERE feed = ?", [feed])
    return list(notes)


# --- Alpaca bars -------------------------------------------------------------------------


def test_a_bars_backfill_fetches_every_page_and_stores_the_window_once_without_its_end(paper: HTTPServer) -> None:
    serve_bars(paper, AlpacaBars())
    start, end = datetime(2026, 3, 2, 14, 30, tzinfo=UTC), datetime(2026, 3, 4, 14, 30, tzinfo=UTC)
    loaded = context()

    outcome = ingest(loaded, request("bars", start, end))

    expected = {
        (symbol, timeframe, stamp)
        for symbol in loaded.settings.engine.watchlist
        for timeframe in ("1Min", "1Day")
        for stamp in AlpacaBars.times(symbol, timeframe, start, end - MS)
    }
    stored = query(loaded, "SELECT symbol, timeframe, ts_event FROM bars")
    assert outcome.run.status == "ok" and outcome.rows_quarantined == 0
    assert len(stored) == outcome.rows_loaded["bars"] == len(expected)
    assert {(symbol, timeframe, stamp.astimezone(UTC)) for symbol, timeframe, stamp in stored} == expected
    # Alpaca's end is inclusive: the bars opening at the window's end belong to the next window.
    assert query(loaded, "SELECT count(*) FROM bars WHERE ts_event >= ?", [end]) == [(0,)]
    pages = [(sent.path, sent.args["timeframe"], sent.args.get("page_token")) for sent, _ in paper.log]
    assert len(pages) == len(set(pages)) > 4  # several pages, each asked for once


def test_a_bars_backfill_gets_the_backfill_timeout(paper: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 16: daily bars for 400 days timed out at the 10 s of a minute's fetch. The server
    # here takes a second per 400 days asked for, the incremental timeout is half of that.
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__TIMEOUT_S", "0.5")
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__TIMEFRAMES", '["1Day"]')
    serve_bars(paper, AlpacaBars(seconds_per_day=1 / 400))

    result = fetch_feed(context(), request("bars", NOW - timedelta(days=400)))

    assert result.status == "ok", result.error
    assert result.batch.tables["bars"]["symbol"].n_unique() == len(load_context().settings.engine.watchlist)


def test_a_long_bars_backfill_is_loaded_slice_by_slice_as_one_run(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hydra.ingestion import ingest_slices
    from hydra.sources import backfill_slices

    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__TIMEFRAMES", '["1Day"]')
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__BACKFILL_SLICE_DAYS", "30")
    serve_bars(paper, AlpacaBars())
    loaded = context()
    start = datetime(2025, 11, 1, tzinfo=UTC)
    whole = request("bars", start)
    slices = backfill_slices(loaded.settings, whole)

    outcome = ingest_slices(loaded, slices, "backfill-run", lambda piece: fetch_feed(loaded, piece))

    assert len(slices) == 14 and slices[0].start == start and slices[-1].end == NOW
    spans = {
        datetime.fromisoformat(sent.args["end"]) - datetime.fromisoformat(sent.args["start"]) for sent, _ in paper.log
    }
    assert max(spans) <= timedelta(days=30)  # no request asks for more than a slice
    expected = {
        (symbol, stamp)
        for symbol in loaded.settings.engine.watchlist
        # Today's daily bar is still forming: the backfill stops at midnight.
        for stamp in AlpacaBars.times(symbol, "1Day", start, datetime(2026, 12, 6, 23, 59, tzinfo=UTC))
    }
    stored = query(loaded, "SELECT symbol, ts_event FROM bars")
    assert len(stored) == len(expected) and {(s, t.astimezone(UTC)) for s, t in stored} == expected
    runs = query(loaded, "SELECT run_id, status, window_start, window_end, rows_loaded FROM ingestion_runs")
    assert [(run, status, s.astimezone(UTC), e.astimezone(UTC), rows) for run, status, s, e, rows in runs] == [
        ("backfill-run", "ok", start, NOW, len(expected))
    ]
    assert outcome.rows_loaded == {"bars": len(expected)}


# --- Binance -----------------------------------------------------------------------------


def test_a_binance_backfill_pages_funding_through_its_window_only_and_says_what_binance_lacks(
    paper: HTTPServer,
) -> None:
    serve_binance(paper)
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    loaded = context()

    outcome = ingest(loaded, request("binance", start, end))

    expected = {(s, t) for s in LISTED for t in Binance.funding_times(s) if start <= t < end}
    stored = query(loaded, "SELECT symbol, ts_event FROM funding_rates")
    assert len(expected) == 2 * 1098 and len(stored) == len(expected)
    assert {(s, t.astimezone(UTC)) for s, t in stored} == expected
    funding_requests = requests_to(paper, "/fapi/v1/fundingRate")
    assert len(funding_requests) == 4  # two pages of 1000 for each symbol
    assert {sent.args["endTime"] for sent in funding_requests} == {str(ms(end) - 1)}
    # Nothing of 2024 exists of open interest or the premium index: nothing is asked for or stored.
    assert query(loaded, "SELECT (SELECT count(*) FROM open_interest), (SELECT count(*) FROM premium_index)") == [
        (0, 0)
    ]
    assert requests_to(paper, "/fapi/v1/premiumIndex") == requests_to(paper, "/fapi/v1/openInterest") == []
    assert requests_to(paper, "/futures/data/openInterestHist") == []
    assert outcome.run.status == "ok"
    assert notes_of(loaded, "binance") == [
        line
        for symbol in LISTED
        for line in (
            f"binance premium index {symbol}: the source gives only the current premium index;"
            " nothing of 2024-01-01..2025-01-01 available",
            f"binance open interest {symbol}: the source gives only the current open interest"
            " (its history is the next part); nothing of 2024-01-01..2025-01-01 available",
            f"binance open interest history {symbol}: the source keeps 30 days;"
            " nothing of 2024-01-01..2025-01-01 available",
        )
    ]


def test_a_binance_backfill_to_now_loads_the_30_days_binance_keeps_and_the_live_figures(paper: HTTPServer) -> None:
    serve_binance(paper)
    start = NOW - timedelta(days=60)
    loaded = context()

    outcome = ingest(loaded, request("binance", start))

    kept_from = NOW - timedelta(days=29)
    history = query(
        loaded, "SELECT symbol, count(*), min(ts_event) FROM open_interest WHERE period = '5m' GROUP BY ALL ORDER BY 1"
    )
    step = timedelta(minutes=5)
    assert [(s, n, t.astimezone(UTC)) for s, n, t in history] == [
        (symbol, (NOW - kept_from) // step, kept_from) for symbol in ("BTCUSDT", "ETHUSDT")
    ]
    assert query(loaded, "SELECT count(*) FROM open_interest WHERE period = 'spot'") == [(2,)]
    assert query(loaded, "SELECT count(*) FROM premium_index") == [(2,)]
    assert query(loaded, "SELECT count(*) FROM funding_rates") == [(2 * 180,)]
    assert outcome.run.status == "ok"
    assert (
        "binance open interest history BTCUSDT: the source keeps 30 days;"
        " 2026-11-08 15:00..2026-12-07 15:00 loaded, 2026-10-08 15:00..2026-11-08 15:00 not available"
    ) in notes_of(loaded, "binance")
    assert (
        "binance premium index ETHUSDT: the source gives only the current premium index;"
        " the value at 2026-12-07 15:00 loaded, 2026-10-08 15:00..2026-12-07 15:00 not available"
    ) in notes_of(loaded, "binance")


def test_a_funding_backfill_from_before_a_listing_says_where_the_history_begins(paper: HTTPServer) -> None:
    serve_binance(paper)
    start, end = datetime(2019, 9, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)

    result = fetch_feed(context(), request("binance", start, end))

    assert (
        "binance funding ETHUSDT: Binance's ETHUSDT funding history has nothing before 2019-11-27 08:00;"
        " 2019-11-27 08:00..2020-01-01 loaded, 2019-09-01..2019-11-27 08:00 not available"
    ) in result.notes
    funding = result.batch.tables["funding_rates"]
    assert funding.group_by("symbol").agg(pl.col("ts_event").min()).sort("symbol").rows() == [
        ("BTCUSDT", LISTED["BTCUSDT"]),
        ("ETHUSDT", LISTED["ETHUSDT"]),
    ]


def test_a_backfill_goes_at_the_configured_pace_and_an_incremental_run_is_not_held_back(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_FEEDS__BINANCE__REQUESTS_PER_MINUTE", "7777")
    serve_binance(paper)
    pacer = shared_pacer(paper.url_for("").rstrip("/"), 7777)
    admitted = pacer.admitted
    loaded = context()

    ingest(loaded, request("binance", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)))
    backfill_requests = len(paper.log)
    ingest(loaded, FeedRequest("binance", now=NOW))

    assert backfill_requests > 0 and pacer.admitted - admitted == backfill_requests
    assert len(paper.log) > backfill_requests  # the incremental run's requests went unpaced


# --- FRED and CBOE (vol_credit) ----------------------------------------------------------


def test_a_vol_credit_backfill_pages_fred_and_keeps_the_window_of_the_cboe_file(paper: HTTPServer) -> None:
    serve_fred_and_cboe(paper)
    start, end = datetime(2010, 1, 1, tzinfo=UTC), datetime(2016, 1, 1, tzinfo=UTC)
    loaded = context()

    outcome = ingest(loaded, request("vol_credit", start, end))

    counts = dict(query(loaded, "SELECT series, count(*) FROM market_series GROUP BY series"))
    business_days = len(list(weekdays(date(2010, 1, 1), date(2015, 12, 31))))
    assert counts == {"VIX": business_days, "USDCNY": business_days}
    assert query(loaded, "SELECT count(*) FROM market_series WHERE ts_event < ? OR ts_event >= ?", [start, end]) == [
        (0,)
    ]
    offsets = [sent.args.get("offset") for sent in requests_to(paper, "/fred/series/observations")]
    assert offsets.count(None) == 2 and "1000" in offsets  # USD/CNY came in two pages
    assert outcome.run.status == "ok"
    assert notes_of(loaded, "vol_credit") == [
        "vol_credit fred BAMLH0A0HYM2: FRED BAMLH0A0HYM2 has nothing in 2010-01-01..2016-01-01"
    ]


def test_a_vix_backfill_from_before_1990_says_the_cboe_file_starts_then(paper: HTTPServer) -> None:
    serve_fred_and_cboe(paper)

    result = fetch_feed(
        context(), request("vol_credit", datetime(1989, 1, 1, tzinfo=UTC), datetime(1991, 1, 1, tzinfo=UTC))
    )

    assert (
        "vol_credit vix: the CBOE file is the whole VIX history;"
        " 1990-01-02 21:15..1991-01-01 loaded, 1989-01-01..1990-01-02 21:15 not available"
    ) in result.notes


# --- metal premium: windows agree with the USD/CNY they need ------------------------------


def test_a_metal_premium_backfill_reads_the_usd_cny_of_its_window_and_keeps_its_fixings(
    paper: HTTPServer,
) -> None:
    serve_fred_and_cboe(paper)
    paper.expect_request("/graph/DayilyJzj", method="POST").respond_with_json(sge_history())
    paper.expect_request("/json/gold_pm.json").respond_with_json(lbma_history())
    start, end = datetime(2019, 3, 1, tzinfo=UTC), datetime(2019, 4, 1, tzinfo=UTC)
    loaded = context()
    ingest(loaded, request("vol_credit", start, end))

    outcome = ingest(loaded, request("metal_premium", start, end))

    assert outcome.run.status == "ok", outcome.run.error
    fixing_days = len(list(weekdays(date(2019, 3, 1), date(2019, 3, 31))))
    assert query(
        loaded, "SELECT count(*), min(ts_event) >= ?, max(ts_event) < ? FROM metal_premiums", [start, end]
    ) == [(2 * fixing_days, True, True)]
    # Only the window's fixings were judged: none outside it waits in quarantine for a rate.
    assert outcome.rows_quarantined == 0


def test_a_backfill_of_the_premium_before_the_sge_benchmark_says_when_it_began(paper: HTTPServer) -> None:
    serve_fred_and_cboe(paper)
    paper.expect_request("/graph/DayilyJzj", method="POST").respond_with_json(sge_history())
    paper.expect_request("/json/gold_pm.json").respond_with_json(lbma_history())
    start, end = datetime(2016, 1, 1, tzinfo=UTC), datetime(2016, 6, 1, tzinfo=UTC)
    loaded = context()
    ingest(loaded, request("vol_credit", start, end))

    result = fetch_feed(loaded, request("metal_premium", start, end))

    assert result.notes == (
        "metal_premium shanghai premium: the SGE benchmark's history;"
        " 2016-04-19 02:15..2016-06-01 loaded, 2016-01-01..2016-04-19 02:15 not available",
    )


def test_ingest_all_loads_usd_cny_before_the_premium_that_needs_it() -> None:
    from hydra.sources import FEEDS, in_dependency_order

    assert FEEDS.index("metal_premium") < FEEDS.index("vol_credit")  # the declared order alone is wrong
    ordered = in_dependency_order(list(FEEDS))
    assert sorted(ordered) == sorted(FEEDS)
    assert ordered.index("vol_credit") < ordered.index("metal_premium")
    assert in_dependency_order(["metal_premium", "bars"]) == ["metal_premium", "bars"]


# --- GitHub ------------------------------------------------------------------------------


def test_a_github_backfill_pages_past_the_stored_etag_until_the_window_is_passed(paper: HTTPServer) -> None:
    paper.expect_request(f"/repos/{REPO}/releases").respond_with_handler(GitHub().releases)
    paper.expect_request(f"/repos/{REPO}").respond_with_data(
        (DATA / "github" / "repo.json").read_text(), content_type="application/json"
    )
    loaded = context()
    state = pl.DataFrame(
        {"feed": ["github"], "key": [f"etag:{REPO}"], "value": [ETAG], "ts_updated": [NOW - timedelta(hours=1)]}
    )
    upsert(loaded.warehouse, {"feed_state": state})  # the incremental runs have seen page 1
    start, end = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)

    outcome = ingest(loaded, request("github", start, end))

    expected = sorted(t for t in RELEASES if start <= t < end)
    stored = [t.astimezone(UTC) for (t,) in query(loaded, "SELECT ts_event FROM github_releases ORDER BY ts_event")]
    assert len(expected) == 52 and stored == expected
    pages = [
        (sent.args["page"], sent.headers.get("If-None-Match")) for sent in requests_to(paper, f"/repos/{REPO}/releases")
    ]
    assert pages == [("1", None), ("2", None)]  # page 2 reaches back past 2023: no page 3
    # The stored ETag still stands for page 1 as the incremental runs have seen it.
    assert query(loaded, "SELECT value FROM feed_state WHERE feed = 'github'") == [(ETAG,)]
    assert requests_to(paper, f"/repos/{REPO}") == [] and query(loaded, "SELECT count(*) FROM repo_stats") == [(0,)]
    assert outcome.run.status == "ok"
    assert notes_of(loaded, "github") == [
        f"github stats {REPO}: GitHub gives only the current star and fork counts;"
        " nothing of 2023-01-01..2024-01-01 available"
    ]


# --- RSS, calendars, CME -----------------------------------------------------------------


def serve_rss(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.url_for("/feed")
    monkeypatch.setenv("HYDRA_FEEDS__NARRATIVE__FEEDS", json.dumps([{"name": "ai-news", "url": url}]))
    server.expect_request(urlsplit(url).path).respond_with_data(rss(), content_type="application/rss+xml")


def test_an_rss_backfill_keeps_the_window_of_the_feed_and_says_how_far_the_feed_goes(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_rss(paper, monkeypatch)
    loaded = context()
    start, end = NOW - timedelta(days=30), NOW - timedelta(days=3)

    ingest(loaded, request("narrative", start, end))

    expected = sorted(t for t in ITEMS if start <= t < end)
    stored = [t.astimezone(UTC) for (t,) in query(loaded, "SELECT ts_event FROM headlines ORDER BY ts_event")]
    assert len(expected) == 14 and stored == expected
    assert notes_of(loaded, "narrative") == [
        "narrative rss ai-news: the feed holds only its latest items;"
        " 2026-11-28 02:00..2026-12-04 15:00 loaded, 2026-11-07 15:00..2026-11-28 02:00 not available"
    ]


def test_a_calendar_backfill_keeps_its_window_and_says_the_schedules_are_current_only(paper: HTTPServer) -> None:
    calendars = DATA / "macro_calendar"
    paper.expect_request("/schedule/news_release/bls.ics").respond_with_data(
        (calendars / "bls.ics").read_bytes(), content_type="text/calendar"
    )
    paper.expect_request("/monetarypolicy/fomccalendars.htm").respond_with_data(
        (calendars / "fomccalendars.htm").read_bytes(), content_type="text/html"
    )
    paper.expect_request("/fred/release/dates").respond_with_handler(fred_release_dates)
    loaded = context()
    start, end = datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)

    outcome = ingest(loaded, request("macro_calendar", start, end))

    assert query(loaded, "SELECT count(*) FROM economic_events WHERE ts_event < ? OR ts_event >= ?", [start, end]) == [
        (0,)
    ]
    by_source = dict(query(loaded, "SELECT source, count(*) FROM economic_events GROUP BY source"))
    assert by_source["fred"] == 2 * 44  # CPI and NFP, monthly, 2023-01 to 2026-08
    asked = [(s.args["realtime_start"], s.args["realtime_end"]) for s in requests_to(paper, "/fred/release/dates")]
    assert set(asked) == {("2022-12-31", "2026-09-02")}
    notes = notes_of(loaded, "macro_calendar")
    assert notes[0].startswith(
        "macro_calendar bls: the BLS calendar holds its current schedule only; 2026-03-06 13:30.."
    )
    assert notes[1].startswith("macro_calendar fomc: the FOMC calendar page lists the last five years only; 2024-")
    assert len(notes) == 2 and outcome.run.status == "ok"


def test_a_cme_backfill_reads_its_advisories_and_not_the_current_margins(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    advisory = "/notices/clearing/2020/06/Chadv20-239.html"
    monkeypatch.setenv("HYDRA_FEEDS__CME__ADVISORY_URLS", json.dumps([advisory]))
    paper.expect_request(advisory).respond_with_data(
        (DATA / "cme" / "Chadv20-239.html").read_text(), content_type="text/html"
    )
    paper.expect_request("/CmeWS/mvc/Margins/OUTRIGHT").respond_with_data(
        (DATA / "cme" / "margins_gc_2026-03-04.json").read_text(), content_type="application/json"
    )
    loaded = context()

    ingest(loaded, request("cme", datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)))

    assert requests_to(paper, "/CmeWS/mvc/Margins/OUTRIGHT") == []
    assert query(loaded, "SELECT count(*) FROM margin_rates") == [(0,)]
    assert query(loaded, "SELECT DISTINCT notice_id FROM margin_notices") == [("Chadv20-239",)]
    assert notes_of(loaded, "cme") == [
        "cme margins and advisories: the margins service gives only the current margins;"
        " nothing of 2020-01-01..2021-01-01 available",
        "cme margins and advisories: CME publishes no index of its clearing advisories:"
        " only the 1 configured advisory pages are read",
    ]


def test_a_window_after_now_asks_nothing_and_says_so(paper: HTTPServer) -> None:
    serve_binance(paper)

    result = fetch_feed(context(), request("binance", NOW + timedelta(days=1)))

    assert paper.log == [] and result.status == "ok" and result.batch.row_count == 0
    assert result.notes == ("binance: the window 2026-12-08 15:00.. holds no time before now: nothing to fetch",)
