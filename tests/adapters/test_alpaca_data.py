"""The Alpaca bars client against a local server speaking Alpaca's format, through the real alpaca-py clients."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from alpaca.data.historical.stock import StockHistoricalDataClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.alpaca_data import (
    BARS_SCHEMA,
    CRYPTO_SOURCE,
    FEED,
    fetch_bars,
    make_crypto_client,
    make_stock_client,
    next_start,
    parse_bars,
)
from adapters.feed import FeedBatch, FeedError, FeedUnavailable, MalformedResponse, RateLimited
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate
from warehouse.read import snapshot, table_row_counts

DATA = Path(__file__).parent.parent / "data" / "alpaca_data"
STOCK_BARS = "/v2/stocks/bars"
CRYPTO_BARS = "/v1beta3/crypto/us/bars"
API_KEY = "PKTEST7Q2M4X9ZKEY"
SECRET_KEY = "sk-test-3vN8wQpL0rT5yU2iO9aS"
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
END = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
INGESTED = datetime(2026, 3, 2, 15, 31, tzinfo=UTC)
RETRIES = 2


def payload(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def base_url(httpserver: HTTPServer) -> str:
    return httpserver.url_for("").rstrip("/")


def stock_client(url: str, *, timeout_s: float = 5.0, max_wait_s: float = 30.0) -> StockHistoricalDataClient:
    client = make_stock_client(
        url, API_KEY, SECRET_KEY, timeout_s=timeout_s, max_retries=RETRIES, retry_wait_s=0.01, max_wait_s=max_wait_s
    )
    assert client is not None
    return client


def fetch(
    url: str,
    symbols: list[str],
    timeframe: str = "1Min",
    *,
    stock_feed: str = "iex",
    start: datetime = START,
    end: datetime | None = END,
    timeout_s: float = 5.0,
    max_wait_s: float = 30.0,
) -> FeedBatch:
    crypto = make_crypto_client(url, timeout_s=timeout_s, max_retries=RETRIES, retry_wait_s=0.01, max_wait_s=max_wait_s)
    stocks = stock_client(url, timeout_s=timeout_s, max_wait_s=max_wait_s)
    return fetch_bars(stocks, crypto, symbols, timeframe, start, end, INGESTED, stock_feed=stock_feed)


def bars_of(batch: FeedBatch) -> pl.DataFrame:
    return batch.tables["bars"].sort("symbol", "ts_event")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- paging, query strings, formats ------------------------------------------------------


def test_stock_bars_follow_next_page_token_until_null(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(STOCK_BARS, method="GET").respond_with_json(payload("stocks_1min_page1.json"))
    httpserver.expect_ordered_request(STOCK_BARS, method="GET").respond_with_json(payload("stocks_1min_page2.json"))

    batch = fetch(base_url(httpserver), ["SPY", "QQQ"])

    httpserver.check_assertions()
    assert len(httpserver.log) == 2
    first, second = (request for request, _ in httpserver.log)
    for request in (first, second):
        assert request.args["symbols"] == "SPY,QQQ"
        assert request.args["timeframe"] == "1Min"
        assert request.args["feed"] == "iex"
        assert request.args["start"] == "2026-03-02T14:30:00+00:00"
        assert request.args["end"] == "2026-03-02T15:30:00+00:00"
        assert request.args["limit"] == "10000"
        assert request.headers["APCA-API-KEY-ID"] == API_KEY
        assert request.headers["APCA-API-SECRET-KEY"] == SECRET_KEY
    assert "page_token" not in first.args
    assert second.args["page_token"] == payload("stocks_1min_page1.json")["next_page_token"]

    bars = bars_of(batch)
    assert batch.feed == FEED
    assert batch.rejected == []
    assert bars.schema == pl.Schema(BARS_SCHEMA)
    assert bars.height == 7
    assert bars["symbol"].value_counts(sort=True).rows() == [("SPY", 5), ("QQQ", 2)]
    assert set(bars["source"]) == {"alpaca-iex"}
    assert set(bars["timeframe"]) == {"1Min"}
    assert set(bars["ts_ingested"]) == {INGESTED}
    first_qqq = bars.filter(pl.col("symbol") == "QQQ").row(0, named=True)
    assert first_qqq == {
        "symbol": "QQQ",
        "timeframe": "1Min",
        "ts_event": at("2026-03-02T14:30:00Z"),
        "open": 512.34,
        "high": 512.9,
        "low": 511.8,
        "close": 512.61,
        "volume": 18234.0,
        "trade_count": 211,
        "vwap": 512.402,
        "source": "alpaca-iex",
        "ts_ingested": INGESTED,
    }


def test_crypto_bars_keep_the_slash_symbol_and_need_no_keys(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CRYPTO_BARS, method="GET").respond_with_json(payload("crypto_1min.json"))

    crypto = make_crypto_client(base_url(httpserver), max_retries=RETRIES, retry_wait_s=0.01)
    batch = fetch_bars(None, crypto, ["BTC/USD", "ETH/USD"], "1Min", START, END, INGESTED)

    (request, _), *_ = httpserver.log
    assert b"symbols=BTC%2FUSD%2CETH%2FUSD" in request.query_string
    assert request.args["timeframe"] == "1Min"
    assert "feed" not in request.args
    assert "APCA-API-KEY-ID" not in request.headers
    bars = bars_of(batch)
    assert bars["symbol"].to_list() == ["BTC/USD", "BTC/USD", "ETH/USD"]
    assert set(bars["source"]) == {CRYPTO_SOURCE}
    assert bars["volume"].to_list() == [0.412736, 0.1893, 3.187]


def test_mixed_watchlist_splits_stocks_and_crypto(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("stocks_1day.json"))
    httpserver.expect_request(CRYPTO_BARS).respond_with_json(payload("crypto_1min.json"))

    # A window holding both files' bars: the client keeps only the bars inside the window it asked for.
    window = {"start": datetime(2026, 3, 1, tzinfo=UTC), "end": datetime(2026, 3, 10, tzinfo=UTC)}
    batch = fetch(base_url(httpserver), ["BTC/USD", "SPY", "ETH/USD", "TLT", "SPY"], **window)

    sent = {request.path: request.args["symbols"] for request, _ in httpserver.log}
    assert sent == {STOCK_BARS: "SPY,TLT", CRYPTO_BARS: "BTC/USD,ETH/USD"}
    assert bars_of(batch).group_by("source").len().sort("source").rows() == [("alpaca-crypto", 3), ("alpaca-iex", 3)]


def test_daily_bars(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("stocks_1day.json"))

    batch = fetch(base_url(httpserver), ["SPY", "TLT"], "1Day", start=datetime(2026, 3, 1, tzinfo=UTC), end=None)

    (request, _), *_ = httpserver.log
    assert request.args["timeframe"] == "1Day"
    assert "end" not in request.args
    bars = bars_of(batch)
    assert set(bars["timeframe"]) == {"1Day"}
    assert bars.filter(pl.col("symbol") == "SPY")["ts_event"].to_list() == [
        at("2026-03-06T05:00:00Z"),
        at("2026-03-09T04:00:00Z"),
    ]
    assert bars.filter(pl.col("symbol") == "SPY")["trade_count"].to_list() == [712345, 654321]


def test_empty_page_gives_an_empty_bars_table(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("empty.json"))

    batch = fetch(base_url(httpserver), ["SPY"])

    assert batch.row_count == 0
    assert batch.rejected == []
    assert batch.tables["bars"].schema == pl.Schema(BARS_SCHEMA)


def test_an_empty_window_asks_nothing(httpserver: HTTPServer) -> None:
    batch = fetch(base_url(httpserver), ["SPY", "BTC/USD"], start=END, end=END)

    assert httpserver.log == []
    assert batch.row_count == 0


# --- validation: bad bars go to quarantine, good ones of the same page load ------------


def test_bad_bars_are_rejected_with_reasons_while_the_rest_load(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("stocks_bad_bars.json"))

    batch = fetch(base_url(httpserver), ["SPY", "QQQ"])

    loaded = bars_of(batch).select("symbol", "ts_event").rows()
    assert loaded == [
        ("QQQ", at("2026-03-02T14:30:00Z")),
        ("SPY", at("2026-03-02T14:30:00Z")),
        ("SPY", at("2026-03-02T14:34:00Z")),
    ]
    reasons = {
        (json.loads(item.payload)["symbol"], json.loads(item.payload)["bar"]["t"]): item.reason
        for item in batch.rejected
    }
    assert reasons == {
        ("SPY", "2026-03-02T14:31:00Z"): "'o' is not a number: \"n/a\"",
        ("SPY", "2026-03-02T14:32:00Z"): "high 597.2 < low 597.7",
        ("SPY", "2026-03-02T14:33:00Z"): "missing field 'c'",
        ("QQQ", "2026-03-02T14:31:00Z"): "high 512.5 < max(open 512.6, close 512.7)",
        ("QQQ", "2026-03-02T14:32:00Z"): "negative volume -5.0",
        (
            "QQQ",
            "2026-03-02 yesterday",
        ): "unparseable timestamp 't' (RFC 3339 with a zone expected): 2026-03-02 yesterday",
        ("QQQ", "2026-03-02T14:34:00Z"): "non-positive price 'o': 0.0",
    }
    raw_bars = {
        (symbol, bar["t"]): bar for symbol, bars in payload("stocks_bad_bars.json")["bars"].items() for bar in bars
    }
    for item in batch.rejected:
        sent = json.loads(item.payload)
        assert sent["bar"] == raw_bars[(sent["symbol"], sent["bar"]["t"])]


@pytest.mark.parametrize(
    ("bar", "reason"),
    [
        ({"o": True}, "'o' is not a number: true"),
        ({"v": False}, "'v' is not a number: false"),
        ({"n": 2.5}, "trade count 'n' is not a whole number >= 0: 2.5"),
        ({"n": -1}, "trade count 'n' is not a whole number >= 0: -1.0"),
        ({"vw": -3}, "negative vwap 'vw': -3.0"),
        ({"h": None}, "missing field 'h'"),
        ({"t": 1772461800}, "unparseable timestamp 't' (RFC 3339 with a zone expected): 1772461800"),
        (
            {"t": ["2026-03-02T14:31:00Z"]},
            "unparseable timestamp 't' (RFC 3339 with a zone expected): [\"2026-03-02T14:31:00Z\"]",
        ),
        ({"l": 10.7}, "low 10.7 > min(open 10.5, close 10.6)"),
        ({"o": [10.5]}, "'o' is not a number: [10.5]"),
        (
            {"t": "2026-03-02T14:30:00"},
            "unparseable timestamp 't' (RFC 3339 with a zone expected): 2026-03-02T14:30:00",
        ),
    ],
)
def test_one_bad_value_rejects_only_its_bar(bar: dict[str, Any], reason: str) -> None:
    good: dict[str, Any] = {
        "t": "2026-03-02T14:30:00Z",
        "o": 10.5,
        "h": 11.0,
        "l": 10.0,
        "c": 10.6,
        "v": 1,
        "n": 1,
        "vw": 10.55,
    }
    bad = {**good, "t": "2026-03-02T14:31:00Z", **bar}

    batch = parse_bars({"SPY": [good, bad]}, ["SPY"], "1Min", "alpaca-iex", INGESTED)

    assert batch.tables["bars"]["ts_event"].to_list() == [at(good["t"])]
    assert [(item.reason, json.loads(item.payload)) for item in batch.rejected] == [
        (reason, {"symbol": "SPY", "bar": bad})
    ]


def test_odd_shapes_within_bars_are_rejected_not_fatal() -> None:
    good = {"t": "2026-03-02T14:30:00.250Z", "o": "10.5", "h": 11, "l": 10, "c": 10.6, "v": 0, "extra": {"x": 1}}
    offset = {**good, "t": "2026-03-02T09:31:00-05:00"}
    raw = {"SPY": [good, "not a bar", offset], "IWM": [offset, None], "QQQ": None, "BTCUSD": [good]}
    berlin = INGESTED.astimezone(timezone(timedelta(hours=1)))

    batch = parse_bars(raw, ["SPY", "QQQ", "IWM"], "1Min", "alpaca-iex", berlin)

    bars = batch.tables["bars"]
    assert bars.select("symbol", "ts_event").rows() == [
        ("SPY", at("2026-03-02T14:30:00.250Z")),
        ("SPY", at("2026-03-02T14:31:00Z")),
        ("IWM", at("2026-03-02T14:31:00Z")),
    ]
    assert bars["open"].to_list() == [10.5, 10.5, 10.5]
    assert bars["trade_count"].to_list() == [None, None, None]
    assert set(bars["ts_ingested"]) == {INGESTED}
    assert sorted((item.reason, item.payload) for item in batch.rejected) == [
        ("bar is not a JSON object", '{"bar": "not a bar", "symbol": "SPY"}'),
        ("bar is not a JSON object", '{"bar": null, "symbol": "IWM"}'),
        ("bars of QQQ are not a JSON array", '{"bars": null, "symbol": "QQQ"}'),
        ("symbol 'BTCUSD' was not requested", json.dumps({"bars": [good], "symbol": "BTCUSD"}, sort_keys=True)),
    ]


def test_bad_values_deep_in_a_long_series_reject_exactly_their_bars() -> None:
    first = datetime(2026, 3, 2, tzinfo=UTC)
    bars: list[Any] = [
        {"t": f"{first + timedelta(minutes=i):%Y-%m-%dT%H:%M:%SZ}", "o": 10.0, "h": 11.0, "l": 9.0, "c": 10.5, "v": i}
        for i in range(2500)
    ]
    bars[1234] = {**bars[1234], "c": "n/a"}
    bars[2001] = None
    bars[2400] = {**bars[2400], "v": True}

    batch = parse_bars({"SPY": bars}, ["SPY"], "1Min", "alpaca-iex", INGESTED)

    assert {item.reason: json.loads(item.payload)["bar"] for item in batch.rejected} == {
        "'c' is not a number: \"n/a\"": bars[1234],
        "bar is not a JSON object": None,
        "'v' is not a number: true": bars[2400],
    }
    loaded = batch.tables["bars"]
    assert loaded.height == 2497
    assert loaded["volume"].to_list() == [float(i) for i in range(2500) if i not in (1234, 2001, 2400)]


# --- whole responses the client cannot use ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"bars": {"SPY": [', "body is not JSON"),
        ((DATA / "no_known_key.json").read_text(encoding="utf-8"), "does not match any known keys"),
        ((DATA / "two_known_keys.json").read_text(encoding="utf-8"), "matches multiple known keys"),
        ('{"bars": [], "next_page_token": null}', "has no attribute 'items'"),
        ("", "NoneType"),
    ],
    ids=["not-json", "no-known-key", "two-known-keys", "bars-not-an-object", "empty-body"],
)
def test_unusable_response_is_malformed_with_its_payload(httpserver: HTTPServer, body: str, message: str) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_data(body, content_type="application/json")

    with pytest.raises(MalformedResponse) as caught:
        fetch(base_url(httpserver), ["SPY"])

    assert message in str(caught.value)
    assert caught.value.payload == body


# --- HTTP failures become typed errors -------------------------------------------------


def test_403_on_sip_data_says_to_use_iex(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("error_403_sip.json"), status=403)

    with pytest.raises(FeedUnavailable) as caught:
        fetch(base_url(httpserver), ["SPY"], stock_feed="sip")

    (request, _), *_ = httpserver.log
    assert request.args["feed"] == "sip"
    assert "HTTP 403" in str(caught.value)
    assert "use feed=iex" in str(caught.value)
    assert len(httpserver.log) == 1


def test_403_with_iex_points_at_the_keys(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("error_403_forbidden.json"), status=403)

    with pytest.raises(FeedUnavailable, match="check ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        fetch(base_url(httpserver), ["SPY"])


def test_429_then_200_is_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(STOCK_BARS).respond_with_json(payload("error_429.json"), status=429)
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("stocks_1min_page2.json"))

    batch = fetch(base_url(httpserver), ["SPY"])

    assert len(httpserver.log) == 2
    assert [response.status_code for _, response in httpserver.log] == [429, 200]
    assert batch.row_count == 3


def test_a_429_is_retried_after_the_wait_its_retry_after_states(httpserver: HTTPServer) -> None:
    # Issue 16: rate-limited Alpaca data was retried after the SDK's fixed wait (here 0.01 s),
    # whatever Retry-After said; it goes through the HttpClient of every feed now.
    asked: list[float] = []

    def limited_once(request: Request) -> Response:
        asked.append(time.monotonic())
        if len(asked) == 1:
            return Response(json.dumps(payload("error_429.json")), status=429, headers={"Retry-After": "1"})
        return Response(json.dumps(payload("stocks_1min_page2.json")), content_type="application/json")

    httpserver.expect_request(STOCK_BARS).respond_with_handler(limited_once)

    batch = fetch(base_url(httpserver), ["SPY"])

    assert batch.row_count == 3 and len(asked) == 2
    assert asked[1] - asked[0] >= 1.0


def test_a_429_asking_for_longer_than_max_wait_is_rate_limited_at_once(httpserver: HTTPServer) -> None:
    # Alpaca states the end of its rate-limit window as a Unix time (X-RateLimit-Reset).
    reset = int(time.time()) + 30
    httpserver.expect_request(STOCK_BARS).respond_with_json(
        payload("error_429.json"), status=429, headers={"X-Ratelimit-Reset": str(reset)}
    )

    with pytest.raises(RateLimited) as caught:
        fetch(base_url(httpserver), ["SPY"], max_wait_s=1)

    assert len(httpserver.log) == 1  # no request spent on an answer that can only be another 429
    assert caught.value.retry_after_s is not None
    assert 0 < caught.value.retry_after_s <= 31


def test_429_after_every_retry_is_rate_limited(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("error_429.json"), status=429)

    with pytest.raises(RateLimited, match="HTTP 429"):
        fetch(base_url(httpserver), ["SPY"])

    assert len(httpserver.log) == RETRIES + 1


def test_a_5xx_is_retried_then_unavailable(httpserver: HTTPServer) -> None:
    for status in (504, 500):
        httpserver.clear()
        httpserver.expect_request(STOCK_BARS).respond_with_data("unavailable", status=status)
        with pytest.raises(FeedUnavailable, match=f"HTTP {status}"):
            fetch(base_url(httpserver), ["SPY"])
        assert len(httpserver.log) == RETRIES + 1


def test_other_client_errors_are_plain_feed_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("error_422.json"), status=422)

    with pytest.raises(FeedError) as caught:
        fetch(base_url(httpserver), ["SPY"])

    assert type(caught.value) is FeedError
    assert "HTTP 422" in str(caught.value)
    assert "end should not be before start" in str(caught.value)


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(FeedUnavailable, match="ConnectionError"):
        fetch(f"http://127.0.0.1:{port}", ["SPY"])


def test_a_slow_server_times_out_as_unavailable(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response(json.dumps(payload("empty.json")), content_type="application/json")

    httpserver.expect_request(STOCK_BARS).respond_with_handler(slow)

    with pytest.raises(FeedUnavailable, match="ReadTimeout"):
        fetch(base_url(httpserver), ["SPY"], timeout_s=0.2)


def test_stock_bars_without_keys_are_unavailable_but_crypto_needs_none() -> None:
    assert make_stock_client("http://127.0.0.1:9", None, None) is None
    assert make_stock_client("http://127.0.0.1:9", API_KEY, None) is None
    crypto = make_crypto_client("http://127.0.0.1:9")

    with pytest.raises(FeedUnavailable, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        fetch_bars(None, crypto, ["SPY"], "1Min", START, END, INGESTED)


def test_a_client_returning_models_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request(STOCK_BARS).respond_with_json(payload("empty.json"))
    modelled = StockHistoricalDataClient(API_KEY, SECRET_KEY, url_override=base_url(httpserver))
    crypto = make_crypto_client(base_url(httpserver))

    with pytest.raises(TypeError, match="make_stock_client"):
        fetch_bars(modelled, crypto, ["SPY"], "1Min", START, END, INGESTED)


def echo_keys(status: int) -> Callable[[HTTPServer], None]:
    def serve(httpserver: HTTPServer) -> None:
        body = json.dumps({"message": f"refused key {API_KEY} with secret {SECRET_KEY}"})
        httpserver.expect_request(STOCK_BARS).respond_with_data(body, status=status, content_type="application/json")

    return serve


def echo_keys_malformed(httpserver: HTTPServer) -> None:
    body = f'{{"echo": "{API_KEY} {SECRET_KEY}"}}'
    httpserver.expect_request(STOCK_BARS).respond_with_data(body, content_type="application/json")


@pytest.mark.parametrize(
    "serve",
    [echo_keys(401), echo_keys(403), echo_keys(422), echo_keys(429), echo_keys(500), echo_keys_malformed],
    ids=["401", "403", "422", "429", "500", "malformed"],
)
def test_api_keys_never_appear_in_errors(httpserver: HTTPServer, serve: Callable[[HTTPServer], None]) -> None:
    serve(httpserver)

    with pytest.raises(FeedError) as caught:
        fetch(base_url(httpserver), ["SPY"])

    error = caught.value
    (request, _), *_ = httpserver.log
    assert request.headers["APCA-API-KEY-ID"] == API_KEY
    shown = [str(error), repr(error), *map(str, error.args), getattr(error, "payload", "")]
    for text in shown:
        assert API_KEY not in text
        assert SECRET_KEY not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


# --- loading: duplicates across pages, idempotence ----------------------------------------


def test_a_bar_repeated_across_pages_is_kept_in_the_batch_and_stored_once(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_ordered_request(STOCK_BARS).respond_with_json(payload("stocks_1min_page1.json"))
    httpserver.expect_ordered_request(STOCK_BARS).respond_with_json(payload("stocks_1min_page2.json"))
    batch = fetch(base_url(httpserver), ["SPY", "QQQ"])
    repeated = batch.tables["bars"].filter(
        (pl.col("symbol") == "SPY") & (pl.col("ts_event") == at("2026-03-02T14:31:00Z"))
    )
    assert repeated["close"].to_list() == [598.05, 598.07]

    warehouse = Warehouse(tmp_path / "w.duckdb")
    migrate(warehouse)
    assert upsert(warehouse, batch.tables) == {"bars": 6}
    first_counts = table_row_counts(warehouse)
    upsert(warehouse, batch.tables)

    assert first_counts["bars"] == 6
    assert table_row_counts(warehouse) == first_counts
    stored = snapshot(warehouse, INGESTED, tables=["bars"])["bars"]
    kept = stored.filter((pl.col("symbol") == "SPY") & (pl.col("ts_event") == at("2026-03-02T14:31:00Z")))
    assert kept["close"].to_list() == [598.07]
    assert not stored.select("symbol", "timeframe", "ts_event").is_duplicated().any()


# --- incremental windows -----------------------------------------------------------------

NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def test_next_start_resumes_one_minute_bar_after_the_last() -> None:
    assert next_start(at("2026-03-02T14:33:00Z"), "1Min", NOW - timedelta(days=5)) == at("2026-03-02T14:34:00Z")


def test_next_start_without_history_starts_where_the_first_fetch_begins() -> None:
    # hydra.sources passes the start of the window a cycle reads (core.readiness.history_needs).
    assert next_start(None, "1Min", at("2026-03-02T14:30:00Z")) == at("2026-03-02T14:30:00Z")
    assert next_start(None, "1Day", NOW - timedelta(days=365)) == NOW - timedelta(days=365)


def test_next_start_for_daily_bars_survives_daylight_saving() -> None:
    # Crypto trades every day: Sunday's bar opens at midnight EST (05:00Z), Monday's at
    # midnight EDT (04:00Z) after the clocks change, only 23 hours later.
    sunday, monday = at("2026-03-08T05:00:00Z"), at("2026-03-09T04:00:00Z")

    resumed = next_start(sunday, "1Day", NOW - timedelta(days=30))

    assert sunday < resumed <= monday
    assert next_start(at("2026-03-06T05:00:00Z"), "1Day", NOW - timedelta(days=30)) == at("2026-03-06T06:00:00Z")


def test_times_must_be_aware_and_timeframes_known() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_start(datetime(2026, 3, 2, 14, 30), "1Min", NOW)  # noqa: DTZ001
    with pytest.raises(ValueError, match="unsupported timeframe"):
        next_start(None, "5Min", NOW)
    crypto = make_crypto_client("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="timezone-aware"):
        fetch_bars(None, crypto, ["BTC/USD"], "1Min", datetime(2026, 3, 2), None, INGESTED)  # noqa: DTZ001
    with pytest.raises(ValueError, match="unknown stock feed"):
        fetch_bars(None, crypto, ["BTC/USD"], "1Min", START, None, INGESTED, stock_feed="otc")
