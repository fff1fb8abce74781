"""The Binance USD-M client against a local server replaying Binance's own formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.binance import (
    FUNDING_PATH,
    OPEN_INTEREST_HISTORY_PATH,
    OPEN_INTEREST_PATH,
    PREMIUM_INDEX_PATH,
    fetch_binance,
    fetch_funding_rates,
    fetch_open_interest,
    fetch_open_interest_history,
    fetch_premium_index,
    parse_funding_rates,
    parse_open_interest,
    parse_open_interest_history,
    parse_premium_index,
)
from adapters.feed import FeedUnavailable, MalformedResponse, RateLimited
from adapters.http import HttpClient
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parents[1] / "data" / "binance"
INGESTED_AT = datetime(2024, 6, 2, 0, 0, 5, tzinfo=UTC)
SINCE = datetime(2024, 6, 1, tzinfo=UTC)
SINCE_MS = 1717200000000
INGESTED_MS = 1717286405000
EIGHT_HOURS_MS = 8 * 3600 * 1000
# 1000 settlements span 333 days: a full page has to start that long before INGESTED_AT.
BACKFILL_SINCE = datetime(2023, 1, 1, tzinfo=UTC)
BACKFILL_SINCE_MS = 1672531200000


def utc(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def payload(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def body(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def funding_page(first_ms: int, rows: int) -> list[dict[str, Any]]:
    """A page in the format of funding_rate_btcusdt.json, one row per 8-hour settlement."""
    return [
        {
            "symbol": "BTCUSDT",
            "fundingTime": first_ms + index * EIGHT_HOURS_MS,
            "fundingRate": "0.00010000",
            "markPrice": f"{60000 + index:.8f}",
        }
        for index in range(rows)
    ]


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


def by_symbol(prefix: str) -> Callable[[Request], Response]:
    def respond(request: Request) -> Response:
        name = f"{prefix}_{request.args['symbol'].lower()}.json"
        return Response(body(name), content_type="application/json")

    return respond


@pytest.fixture
def client(httpserver: HTTPServer) -> HttpClient:
    return HttpClient(
        feed="binance",
        base_url=httpserver.url_for("").rstrip("/"),
        user_agent="HYDRA-tests",
        backoff_s=0.01,
        max_wait_s=2,
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    migrate(wh)
    return wh


def row_counts(wh: Warehouse, tables: list[str]) -> dict[str, int]:
    with wh.connect() as con:
        counts = {}
        for table in tables:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None
            counts[table] = int(row[0])
        return counts


# --- happy paths -------------------------------------------------------------------------


def test_funding_rates_from_since_are_stored_as_the_given_fractions(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_data(
        body("funding_rate_btcusdt.json"), content_type="application/json", headers={"X-MBX-USED-WEIGHT-1M": "3"}
    )

    batch = fetch_funding_rates(client, "BTCUSDT", SINCE, INGESTED_AT)

    frame = batch.tables["funding_rates"]
    assert frame.schema == pl.Schema(
        {
            "venue": pl.String(),
            "symbol": pl.String(),
            "ts_event": pl.Datetime("us", "UTC"),
            "funding_rate": pl.Float64(),
            "mark_price": pl.Float64(),
            "ts_ingested": pl.Datetime("us", "UTC"),
        }
    )
    assert frame.to_dicts() == [
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "ts_event": datetime(2024, 6, 1, 0, tzinfo=UTC),
            "funding_rate": 0.0001,
            "mark_price": 67533.2,
            "ts_ingested": INGESTED_AT,
        },
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "ts_event": datetime(2024, 6, 1, 8, tzinfo=UTC),
            "funding_rate": 0.00007312,
            "mark_price": 67702.84965035,
            "ts_ingested": INGESTED_AT,
        },
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "ts_event": datetime(2024, 6, 1, 16, tzinfo=UTC),
            "funding_rate": -0.00002145,
            "mark_price": 67718.0,
            "ts_ingested": INGESTED_AT,
        },
    ]
    assert batch.rejected == []
    [request] = httpserver.log[0:1]
    assert dict(request[0].args) == {"symbol": "BTCUSDT", "startTime": str(SINCE_MS), "limit": "1000"}
    assert request[0].headers["User-Agent"] == "HYDRA-tests"


def test_funding_rates_without_since_ask_for_the_latest_page(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_json(payload("funding_rate_btcusdt.json"))

    batch = fetch_funding_rates(client, "BTCUSDT", None, INGESTED_AT)

    assert batch.tables["funding_rates"].height == 3
    assert [dict(request.args) for request in requests_to(httpserver, FUNDING_PATH)] == [
        {"symbol": "BTCUSDT", "limit": "1000"}
    ]


def test_early_funding_records_without_mark_price_keep_their_rate() -> None:
    batch = parse_funding_rates(payload("funding_rate_btcusdt_2019.json"), INGESTED_AT)

    frame = batch.tables["funding_rates"]
    assert frame.select("ts_event", "funding_rate", "mark_price").rows() == [
        (datetime(2019, 9, 10, 8, tzinfo=UTC), 0.0001, None),
        (datetime(2019, 10, 9, 8, tzinfo=UTC), -0.0375, None),
    ]
    assert batch.rejected == []


def test_premium_index(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PREMIUM_INDEX_PATH, query_string={"symbol": "BTCUSDT"}).respond_with_json(
        payload("premium_index_btcusdt.json")
    )

    batch = fetch_premium_index(client, "BTCUSDT", INGESTED_AT)

    assert batch.tables["premium_index"].to_dicts() == [
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "ts_event": datetime(2024, 6, 1, 23, 59, 59, tzinfo=UTC),
            "mark_price": 67748.2,
            "index_price": 67781.36595745,
            "estimated_settle_price": 67760.18533613,
            "last_funding_rate": 0.0000453,
            "next_funding_time": datetime(2024, 6, 2, tzinfo=UTC),
            "interest_rate": 0.0001,
            "ts_ingested": INGESTED_AT,
        }
    ]
    assert batch.rejected == []


def test_premium_index_of_a_delivery_contract_has_no_funding() -> None:
    item = payload("premium_index_btcusdt.json") | {
        "symbol": "BTCUSDT_240628",
        "lastFundingRate": "",
        "interestRate": "",
        "nextFundingTime": 0,
    }

    [row] = parse_premium_index(item, INGESTED_AT).tables["premium_index"].to_dicts()

    assert (row["last_funding_rate"], row["interest_rate"], row["next_funding_time"]) == (None, None, None)
    assert row["mark_price"] == 67748.2


def test_open_interest_is_stored_with_period_spot(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(OPEN_INTEREST_PATH, query_string={"symbol": "BTCUSDT"}).respond_with_json(
        payload("open_interest_btcusdt.json")
    )

    batch = fetch_open_interest(client, "BTCUSDT", INGESTED_AT)

    assert batch.tables["open_interest"].to_dicts() == [
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "period": "spot",
            "ts_event": utc(1717286399512),
            "open_interest": 78815.108,
            "open_interest_value": None,
            "ts_ingested": INGESTED_AT,
        }
    ]


@pytest.mark.parametrize(
    "recording", ["open_interest_hist_btcusdt.json", "open_interest_hist_btcusdt_string_timestamp.json"]
)
def test_open_interest_history_timestamps_as_integer_or_string(
    recording: str, client: HttpClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(OPEN_INTEREST_HISTORY_PATH).respond_with_data(
        body(recording), content_type="application/json"
    )

    batch = fetch_open_interest_history(client, "BTCUSDT", SINCE, INGESTED_AT, period="5m")

    assert batch.tables["open_interest"].to_dicts() == [
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "period": "5m",
            "ts_event": datetime(2024, 6, 1, 23, 50, tzinfo=UTC),
            "open_interest": 78790.852,
            "open_interest_value": 5337426458.8938,
            "ts_ingested": INGESTED_AT,
        },
        {
            "venue": "binance-usdm",
            "symbol": "BTCUSDT",
            "period": "5m",
            "ts_event": datetime(2024, 6, 1, 23, 55, tzinfo=UTC),
            "open_interest": 78815.108,
            "open_interest_value": 5339488146.4038,
            "ts_ingested": INGESTED_AT,
        },
    ]
    assert batch.rejected == []
    [request] = requests_to(httpserver, OPEN_INTEREST_HISTORY_PATH)
    assert dict(request.args) == {
        "symbol": "BTCUSDT",
        "period": "5m",
        "limit": "500",
        "startTime": str(SINCE_MS),
        "endTime": str(INGESTED_MS),
    }


# --- paging ------------------------------------------------------------------------------


def test_funding_history_pages_forward_until_a_short_page(client: HttpClient, httpserver: HTTPServer) -> None:
    first_page = funding_page(BACKFILL_SINCE_MS, 1000)
    last_of_first = first_page[-1]["fundingTime"]
    second_page = funding_page(last_of_first + EIGHT_HOURS_MS, 3)

    def respond(request: Request) -> Response:
        page = first_page if int(request.args["startTime"]) == BACKFILL_SINCE_MS else second_page
        return Response(json.dumps(page), content_type="application/json", headers={"X-MBX-USED-WEIGHT-1M": "12"})

    httpserver.expect_request(FUNDING_PATH).respond_with_handler(respond)

    batch = fetch_funding_rates(client, "BTCUSDT", BACKFILL_SINCE, INGESTED_AT)

    sent = [int(request.args["startTime"]) for request in requests_to(httpserver, FUNDING_PATH)]
    assert sent == [BACKFILL_SINCE_MS, last_of_first + 1]
    frame = batch.tables["funding_rates"]
    assert batch.rejected == []
    assert frame.height == 1003
    assert frame["ts_event"].is_sorted()
    assert frame["ts_event"].n_unique() == 1003


def test_funding_history_paging_stops_when_the_weight_nears_the_limit(
    client: HttpClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_json(
        funding_page(BACKFILL_SINCE_MS, 1000), headers={"X-MBX-USED-WEIGHT-1M": "2150"}
    )

    batch = fetch_binance(client, ["BTCUSDT", "ETHUSDT"], BACKFILL_SINCE, INGESTED_AT)

    assert batch.tables["funding_rates"].height == 1000
    assert [request.path for request, _ in httpserver.log] == [FUNDING_PATH]


def test_empty_funding_page(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_json([])

    batch = fetch_funding_rates(client, "BTCUSDT", INGESTED_AT, INGESTED_AT)

    assert batch.tables["funding_rates"].is_empty()
    assert batch.tables["funding_rates"].schema["ts_event"] == pl.Datetime("us", "UTC")
    assert batch.rejected == []
    assert len(httpserver.log) == 1


def test_open_interest_history_windows_tile_the_range_and_stay_within_30_days(
    client: HttpClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(OPEN_INTEREST_HISTORY_PATH).respond_with_json([])
    window_ms = 500 * 5 * 60 * 1000

    fetch_open_interest_history(client, "BTCUSDT", INGESTED_AT - timedelta(days=3), INGESTED_AT)
    fetch_open_interest_history(client, "BTCUSDT", None, INGESTED_AT)
    fetch_open_interest_history(client, "BTCUSDT", INGESTED_AT - timedelta(days=60), INGESTED_AT, period="1d")

    windows = [
        (int(request.args["startTime"]), int(request.args["endTime"]))
        for request in requests_to(httpserver, OPEN_INTEREST_HISTORY_PATH)
    ]
    three_days_ago = INGESTED_MS - 3 * 86_400_000
    assert windows == [
        (three_days_ago, three_days_ago + window_ms - 1),
        (three_days_ago + window_ms, INGESTED_MS),
        (INGESTED_MS - window_ms + 1, INGESTED_MS),
        (INGESTED_MS - 29 * 86_400_000, INGESTED_MS),
    ]


# --- bad answers -------------------------------------------------------------------------


def test_truncated_json_body_is_malformed_and_carries_the_payload(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_data(
        body("funding_rate_truncated.json"), content_type="application/json"
    )

    with pytest.raises(MalformedResponse) as raised:
        fetch_funding_rates(client, "BTCUSDT", SINCE, INGESTED_AT)

    assert raised.value.payload == body("funding_rate_truncated.json")
    assert raised.value.feed == "binance"


def test_an_object_where_a_list_belongs_is_malformed(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_json(payload("error_invalid_symbol.json"))

    with pytest.raises(MalformedResponse, match="expected a list, got a JSON dict") as raised:
        fetch_funding_rates(client, "BTCUSDT", SINCE, INGESTED_AT)

    assert json.loads(raised.value.payload) == payload("error_invalid_symbol.json")


@pytest.mark.parametrize(
    ("parse", "answer"),
    [
        (parse_open_interest, [payload("open_interest_btcusdt.json")]),
        (parse_premium_index, "67748.2"),
        (lambda answer, at: parse_open_interest_history(answer, "5m", at), {"data": []}),
    ],
)
def test_other_wrong_shapes_are_malformed(parse: Callable[[Any, datetime], Any], answer: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse(answer, INGESTED_AT)


def test_bad_items_are_rejected_with_reasons_while_good_items_load(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_data(
        body("funding_rate_bad_items.json"), content_type="application/json"
    )

    batch = fetch_funding_rates(client, "BTCUSDT", SINCE, INGESTED_AT)

    assert batch.tables["funding_rates"].select("ts_event", "funding_rate").rows() == [
        (datetime(2024, 6, 1, 0, tzinfo=UTC), 0.0001),
        (datetime(2024, 6, 2, 8, tzinfo=UTC), 0.00004021),
    ]
    items = payload("funding_rate_bad_items.json")
    assert [(json.loads(rejected.payload), rejected.reason) for rejected in batch.rejected] == [
        (items[1], "/fapi/v1/fundingRate: fundingRate='0.0000731O': not a number"),
        (items[2], "/fapi/v1/fundingRate: fundingTime: missing"),
        (items[3], "/fapi/v1/fundingRate: fundingRate='0.75000000': beyond ±0.05 per funding interval"),
    ]


@pytest.mark.parametrize(
    ("parse", "item", "reason"),
    [
        (
            parse_open_interest,
            {"openInterest": "-12.500", "symbol": "BTCUSDT", "time": 1717286399512},
            "/fapi/v1/openInterest: openInterest='-12.500': negative",
        ),
        (
            parse_premium_index,
            payload("premium_index_btcusdt.json") | {"markPrice": "0.00000000"},
            "/fapi/v1/premiumIndex: markPrice='0.00000000': not positive",
        ),
        (
            parse_premium_index,
            payload("premium_index_btcusdt.json") | {"indexPrice": "NaN"},
            "/fapi/v1/premiumIndex: indexPrice='NaN': not a number",
        ),
        (
            parse_premium_index,
            payload("premium_index_btcusdt.json") | {"lastFundingRate": float("inf")},
            "/fapi/v1/premiumIndex: lastFundingRate=inf: not finite",
        ),
        (
            parse_open_interest,
            {"openInterest": "78815.108", "symbol": "BTCUSDT", "time": 1717286399},
            "/fapi/v1/openInterest: time=1717286399: not between 2019-01-01 and a day after ingestion",
        ),
        (
            parse_open_interest,
            {"openInterest": "78815.108", "symbol": "BTCUSDT", "time": 10**18},
            f"/fapi/v1/openInterest: time={10**18}: not between 2019-01-01 and a day after ingestion",
        ),
        (
            parse_open_interest,
            {"openInterest": 10**400, "symbol": "BTCUSDT", "time": 1717286399512},
            f"/fapi/v1/openInterest: openInterest={10**400!r}: out of range",
        ),
        (
            parse_open_interest,
            {"openInterest": True, "symbol": "BTCUSDT", "time": 1717286399512},
            "/fapi/v1/openInterest: openInterest=True: not a number",
        ),
    ],
)
def test_absurd_values_are_rejected(parse: Callable[[Any, datetime], Any], item: Any, reason: str) -> None:
    batch = parse(item, INGESTED_AT)

    assert [rejected.reason for rejected in batch.rejected] == [reason]
    assert next(iter(batch.tables.values())).is_empty()


def test_history_items_that_are_not_objects_or_have_bad_timestamps_are_rejected() -> None:
    items = [
        *payload("open_interest_hist_btcusdt.json"),
        "BTCUSDT",
        {"symbol": "BTCUSDT", "sumOpenInterest": "78790.852", "sumOpenInterestValue": "1", "timestamp": "soon"},
        {"symbol": "BTCUSDT", "sumOpenInterest": "78790.852", "sumOpenInterestValue": "1", "timestamp": "9" * 5000},
    ]

    batch = parse_open_interest_history(items, "5m", INGESTED_AT)

    assert batch.tables["open_interest"].height == 2
    assert [rejected.reason for rejected in batch.rejected] == [
        "/futures/data/openInterestHist: item is a JSON str, not an object",
        "/futures/data/openInterestHist: timestamp='soon': not epoch milliseconds",
        f"/futures/data/openInterestHist: timestamp='{'9' * 5000}': not epoch milliseconds",
    ]
    assert batch.rejected[0].payload == "BTCUSDT"


def test_ingestion_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_funding_rates([], datetime(2024, 6, 2))  # noqa: DTZ001


# --- HTTP errors -------------------------------------------------------------------------


def test_restricted_location_451_is_feed_unavailable(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_data(
        body("error_451.json"), status=451, content_type="application/json"
    )

    with pytest.raises(FeedUnavailable, match="HTTP 451"):
        fetch_binance(client, ["BTCUSDT", "ETHUSDT"], SINCE, INGESTED_AT)
    assert len(httpserver.log) == 1


def test_429_with_a_short_retry_after_is_retried(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(PREMIUM_INDEX_PATH).respond_with_data(
        body("error_429.json"), status=429, headers={"Retry-After": "1"}, content_type="application/json"
    )
    httpserver.expect_request(PREMIUM_INDEX_PATH).respond_with_json(payload("premium_index_btcusdt.json"))

    batch = fetch_premium_index(client, "BTCUSDT", INGESTED_AT)

    assert batch.tables["premium_index"]["mark_price"].to_list() == [67748.2]
    assert [response.status_code for _, response in httpserver.log] == [429, 200]


def test_429_with_a_retry_after_beyond_the_wait_limit_is_rate_limited(
    client: HttpClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(PREMIUM_INDEX_PATH).respond_with_data(
        body("error_429.json"), status=429, headers={"Retry-After": "30"}, content_type="application/json"
    )

    with pytest.raises(RateLimited) as raised:
        fetch_premium_index(client, "BTCUSDT", INGESTED_AT)

    assert raised.value.retry_after_s == 30.0
    assert len(httpserver.log) == 1


def test_418_ban_is_rate_limited_without_retry(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(OPEN_INTEREST_PATH).respond_with_data(
        body("error_418.json"), status=418, headers={"Retry-After": "1"}, content_type="application/json"
    )

    with pytest.raises(RateLimited, match="HTTP 418"):
        fetch_open_interest(client, "BTCUSDT", INGESTED_AT)

    assert len(httpserver.log) == 1


def test_500_then_200_succeeds(client: HttpClient, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(OPEN_INTEREST_PATH).respond_with_data("Internal Server Error", status=500)
    httpserver.expect_request(OPEN_INTEREST_PATH).respond_with_json(payload("open_interest_btcusdt.json"))

    batch = fetch_open_interest(client, "BTCUSDT", INGESTED_AT)

    assert batch.tables["open_interest"]["open_interest"].to_list() == [78815.108]
    assert [response.status_code for _, response in httpserver.log] == [500, 200]


# --- the whole feed, into the warehouse --------------------------------------------------


def test_duplicates_stay_in_the_batch_and_load_once(
    client: HttpClient, httpserver: HTTPServer, warehouse: Warehouse
) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_data(
        body("funding_rate_duplicate.json"), content_type="application/json"
    )
    batch = fetch_funding_rates(client, "BTCUSDT", SINCE, INGESTED_AT)
    assert batch.tables["funding_rates"].height == 3

    assert upsert(warehouse, batch.tables) == {"funding_rates": 2}
    first = row_counts(warehouse, ["funding_rates"])
    upsert(warehouse, batch.tables)

    assert first == row_counts(warehouse, ["funding_rates"]) == {"funding_rates": 2}
    with warehouse.connect() as con:
        repeated = con.execute(
            "SELECT venue, symbol, ts_event FROM funding_rates GROUP BY ALL HAVING count(*) > 1"
        ).fetchall()
    assert repeated == []


def test_fetch_binance_merges_every_endpoint_of_every_symbol_and_loads(
    client: HttpClient, httpserver: HTTPServer, warehouse: Warehouse
) -> None:
    httpserver.expect_request(FUNDING_PATH).respond_with_handler(by_symbol("funding_rate"))
    httpserver.expect_request(PREMIUM_INDEX_PATH).respond_with_handler(by_symbol("premium_index"))
    httpserver.expect_request(OPEN_INTEREST_PATH).respond_with_handler(by_symbol("open_interest"))
    httpserver.expect_request(OPEN_INTEREST_HISTORY_PATH).respond_with_handler(by_symbol("open_interest_hist"))

    batch = fetch_binance(client, ["BTCUSDT", "ETHUSDT"], SINCE, INGESTED_AT)

    assert batch.feed == "binance"
    assert batch.rejected == []
    assert {table: frame.height for table, frame in batch.tables.items()} == {
        "funding_rates": 5,
        "premium_index": 2,
        "open_interest": 5,
    }
    assert batch.tables["open_interest"].group_by("symbol", "period").len().sort("symbol", "period").rows() == [
        ("BTCUSDT", "5m", 2),
        ("BTCUSDT", "spot", 1),
        ("ETHUSDT", "5m", 1),
        ("ETHUSDT", "spot", 1),
    ]
    assert len(httpserver.log) == 8
    assert upsert(warehouse, batch.tables) == {"funding_rates": 5, "premium_index": 2, "open_interest": 5}
    upsert(warehouse, batch.tables)
    assert row_counts(warehouse, ["funding_rates", "premium_index", "open_interest"]) == {
        "funding_rates": 5,
        "premium_index": 2,
        "open_interest": 5,
    }


def test_an_unknown_history_period_is_refused_before_any_request(client: HttpClient, httpserver: HTTPServer) -> None:
    with pytest.raises(ValueError, match="'3m' is not one of 5m, 15m"):
        fetch_binance(client, ["BTCUSDT"], SINCE, INGESTED_AT, period="3m")

    assert httpserver.log == []
