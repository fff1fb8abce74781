"""The Alpaca broker against a local server speaking Alpaca's trading API, through the real alpaca-py TradingClient."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from fake_alpaca import (
    ACTIVITIES,
    ACTIVITIES_PAGE_MAX,
    API_KEY,
    BY_CLIENT_ID,
    NOW,
    ORDERS,
    RETRIES,
    SECRET_KEY,
    FakeAlpaca,
    Handler,
    payload,
    reply,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.alpaca_broker import AlpacaApiError, AlpacaBroker, AlpacaUnreachable
from adapters.broker import (
    BrokerError,
    BrokerUnauthorized,
    MarketClock,
    OrderRefused,
    OrderStatus,
    RefusalCode,
    RefusalKind,
    new_fill,
)
from core.types import Order, Side


@pytest.fixture
def fake(alpaca_server: HTTPServer) -> FakeAlpaca:
    return FakeAlpaca(alpaca_server)


@pytest.fixture
def broker(alpaca_server: HTTPServer) -> AlpacaBroker:
    return make_broker(alpaca_server)


def make_broker(alpaca_server: HTTPServer, *, timeout_s: float = 2.0, **options: Any) -> AlpacaBroker:
    url = alpaca_server.url_for("").rstrip("/")
    return AlpacaBroker(
        API_KEY, SECRET_KEY, url, timeout_s=timeout_s, max_retries=RETRIES, retry_wait_s=0.01, **options
    )


def an_order(
    client_id: str = "hydra-momentum-SPY-1",
    symbol: str = "SPY",
    side: Side = Side.BUY,
    qty: float = 10.0,
    order_type: str = "market",
    limit_price: float | None = None,
) -> Order:
    return Order(
        client_order_id=client_id,
        symbol=symbol,
        side=side,
        qty=qty,
        strategy="momentum",
        intent="entry" if side is Side.BUY else "exit",
        decision_price=100.0,
        ts_event=NOW,
        order_type=order_type,
        limit_price=limit_price,
    )


def seen(alpaca_server: HTTPServer) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request, _ in alpaca_server.log]


def posts(alpaca_server: HTTPServer) -> int:
    return sum(1 for method, path in seen(alpaca_server) if (method, path) == ("POST", ORDERS))


# --- submit: what reaches Alpaca -------------------------------------------------------------


def test_an_equity_market_order_is_sent_as_alpaca_expects(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    placed = broker.submit(an_order())

    # The asset's flags are read once a session, before its first order.
    assert seen(alpaca_server) == [("GET", "/v2/clock"), ("GET", "/v2/assets/SPY"), ("POST", ORDERS)]
    post = next(request for request, _ in alpaca_server.log if request.method == "POST")
    assert post.headers["APCA-API-KEY-ID"] == API_KEY
    # alpaca-py serialises qty as a JSON number (OrderRequest.qty is a float); Alpaca takes either.
    assert json.loads(post.get_data()) == {
        "symbol": "SPY",
        "qty": 10.0,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": "hydra-momentum-SPY-1",
    }
    assert placed.client_order_id == "hydra-momentum-SPY-1"
    assert placed.broker_order_id == fake.orders["hydra-momentum-SPY-1"]["id"]
    assert (placed.symbol, placed.side, placed.qty) == ("SPY", Side.BUY, 10.0)
    assert (placed.order_type, placed.time_in_force) == ("market", "day")
    assert placed.status is OrderStatus.ACCEPTED
    assert placed.filled_qty == 0.0
    assert placed.filled_avg_price is None
    assert placed.submitted_at == datetime(2026, 3, 2, 15, 15, 1, 937734, tzinfo=UTC)


def test_a_crypto_order_keeps_the_slash_goes_gtc_and_needs_no_open_market(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.clock = payload("clock_closed.json")

    placed = broker.submit(an_order("hydra-cascade-BTC-1", "BTC/USD", qty=0.1 + 0.2))

    assert seen(alpaca_server) == [("POST", ORDERS)]
    assert fake.posted == [
        {
            "symbol": "BTC/USD",
            "qty": 0.3,
            "side": "buy",
            "type": "market",
            "time_in_force": "gtc",
            "client_order_id": "hydra-cascade-BTC-1",
        }
    ]
    # Rounded to Alpaca's 9 decimals: the float 0.30000000000000004 is never sent.
    post = next(request for request, _ in alpaca_server.log if request.method == "POST")
    assert b'"qty": 0.3,' in post.get_data()
    assert (placed.symbol, placed.time_in_force, placed.qty) == ("BTC/USD", "gtc", 0.3)


@pytest.mark.parametrize(
    ("symbol", "qty", "time_in_force"), [("SPY", 3.0, "day"), ("BTC/USD", 0.25, "gtc"), ("ETH/USD", 2.0, "gtc")]
)
def test_a_limit_order_carries_its_limit_price(
    fake: FakeAlpaca, broker: AlpacaBroker, symbol: str, qty: float, time_in_force: str
) -> None:
    placed = broker.submit(an_order("hydra-limit-1", symbol, qty=qty, order_type="limit", limit_price=101.5))

    assert fake.posted == [
        {
            "symbol": symbol,
            "qty": qty,
            "side": "buy",
            "type": "limit",
            "time_in_force": time_in_force,
            "limit_price": 101.5,
            "client_order_id": "hydra-limit-1",
        }
    ]
    assert (placed.order_type, placed.time_in_force) == ("limit", time_in_force)


@pytest.mark.parametrize(
    ("symbol", "side", "limit_price", "sent"),
    [
        ("SPY", Side.BUY, 101.237, 101.23),
        ("SPY", Side.SELL, 101.231, 101.24),
        ("SPY", Side.BUY, 101.2, 101.2),
        ("LZ", Side.BUY, 0.123456, 0.1234),
        ("LZ", Side.SELL, 0.123401, 0.1235),
        ("BTC/USD", Side.BUY, 64210.123456, 64210.123456),
    ],
)
def test_equity_limit_prices_go_on_alpacas_tick_never_against_the_order(
    fake: FakeAlpaca, broker: AlpacaBroker, symbol: str, side: Side, limit_price: float, sent: float
) -> None:
    broker.submit(an_order("hydra-limit-1", symbol, side, 1.0, order_type="limit", limit_price=limit_price))

    assert fake.posted[0]["limit_price"] == sent


# --- submit: idempotency and Alpaca's answers ------------------------------------------------


def test_a_duplicate_client_order_id_returns_the_existing_order(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    first = broker.submit(an_order())
    alpaca_server.clear_log()

    again = broker.submit(an_order())

    assert seen(alpaca_server) == [("GET", "/v2/clock"), ("POST", ORDERS), ("GET", BY_CLIENT_ID)]
    lookup = alpaca_server.log[-1][0]
    assert lookup.args["client_order_id"] == "hydra-momentum-SPY-1"
    assert alpaca_server.log[1][1].status_code == 422
    assert again == first
    assert len(fake.orders) == 1


def test_422_40010001_without_such_an_order_is_alpacas_refusal(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    # Alpaca answers other invalid requests with the same code; the look-up tells them apart.
    fake.script["POST", ORDERS].append(lambda _: reply(payload("error_422_invalid_qty.json"), 422))

    with pytest.raises(OrderRefused, match="qty must be > 0") as caught:
        broker.submit(an_order())

    assert caught.value.client_order_id == "hydra-momentum-SPY-1"
    assert ("GET", BY_CLIENT_ID) in seen(alpaca_server)
    assert fake.orders == {}


def test_a_client_order_id_already_used_by_another_order_is_refused(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.put("order_accepted.json", "hydra-1")

    with pytest.raises(OrderRefused) as caught:
        broker.submit(an_order("hydra-1", qty=5.0))

    assert caught.value.reason == "client order id already used at Alpaca by buy 10 SPY"
    assert seen(alpaca_server)[-1] == ("GET", BY_CLIENT_ID)
    assert len(fake.orders) == 1


def test_insufficient_qty_is_refused_with_alpacas_message(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    # Open orders Alpaca knows of and HYDRA does not yet hold the position: Alpaca refuses.
    fake.script["POST", ORDERS].append(lambda _: reply(payload("error_403_insufficient_qty.json"), 403))

    with pytest.raises(OrderRefused) as caught:
        broker.submit(an_order(side=Side.SELL, qty=10.0))

    assert caught.value.reason == "Alpaca: insufficient qty available for order (requested: 25, available: 10)"
    assert (caught.value.code, caught.value.kind) == (RefusalCode.INSUFFICIENT_QTY, RefusalKind.TRANSIENT)
    assert posts(alpaca_server) == 1


def test_rate_limits_are_retried_until_the_order_goes_through(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.script["POST", ORDERS].extend([lambda _: reply(payload("error_429.json"), 429)] * RETRIES)

    placed = broker.submit(an_order())

    assert posts(alpaca_server) == RETRIES + 1
    assert placed.broker_order_id == fake.orders["hydra-momentum-SPY-1"]["id"]


def test_a_persistent_rate_limit_is_a_broker_error_not_a_refusal(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.script["POST", ORDERS].extend([lambda _: reply(payload("error_429.json"), 429)] * (RETRIES + 1))

    with pytest.raises(BrokerError, match="HTTP 429") as caught:
        broker.submit(an_order())

    assert not isinstance(caught.value, OrderRefused)
    assert posts(alpaca_server) == RETRIES + 1
    assert fake.orders == {}


def test_a_server_error_is_a_broker_error_not_a_refusal(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.script["POST", ORDERS].append(lambda _: reply(payload("error_500.json"), 500))

    with pytest.raises(AlpacaApiError, match="internal server error") as caught:
        broker.submit(an_order())

    assert not isinstance(caught.value, OrderRefused)
    assert (caught.value.status_code, caught.value.code) == (500, 50010000)
    assert posts(alpaca_server) == 1


def test_a_timeout_after_alpaca_accepted_the_order_is_a_broker_error_and_the_order_is_found(
    alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    answered = threading.Event()

    def accept_then_stall(request: Request) -> Response:
        response = fake.place(request)
        time.sleep(0.6)
        answered.set()
        return response

    fake.script["POST", ORDERS].append(accept_then_stall)
    broker = make_broker(alpaca_server, timeout_s=0.2)

    with pytest.raises(BrokerError, match="ReadTimeout") as caught:
        broker.submit(an_order())

    assert not isinstance(caught.value, OrderRefused)
    # The test server answers one request at a time: let it finish the stalled one.
    assert answered.wait(5)
    found = broker.order("hydra-momentum-SPY-1")
    assert found is not None
    assert found.broker_order_id == fake.orders["hydra-momentum-SPY-1"]["id"]
    assert found.status is OrderStatus.ACCEPTED
    assert broker.submit(an_order()) == found
    assert len(fake.orders) == 1


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_unreachable_broker_is_a_broker_error() -> None:
    broker = AlpacaBroker(API_KEY, SECRET_KEY, closed_port_url(), timeout_s=1.0, max_retries=0)

    with pytest.raises(BrokerError, match="ConnectionError"):
        broker.account()


# --- submit: Alpaca's rules, checked before sending ------------------------------------------


def test_an_equity_order_while_the_market_is_closed_is_refused_before_any_post(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.clock = payload("clock_closed.json")

    with pytest.raises(OrderRefused) as caught:
        broker.submit(an_order())

    assert caught.value.reason == "market closed until 2026-03-03T14:30:00+00:00"
    assert posts(alpaca_server) == 0
    assert seen(alpaca_server) == [("GET", "/v2/clock"), ("GET", BY_CLIENT_ID)]


def test_an_order_placed_before_the_close_is_returned_when_retried_after_it(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    placed = broker.submit(an_order())
    fake.clock = payload("clock_closed.json")

    assert broker.submit(an_order()) == placed
    assert posts(alpaca_server) == 1


@pytest.mark.parametrize(
    ("symbol", "qty", "available", "reason"),
    [
        ("BTC/USD", 0.8, "0.5", "crypto cannot be sold short: holds 0.5, sell 0.8"),
        ("ETH/USD", 0.1, "0.5", "crypto cannot be sold short: holds 0, sell 0.1"),
        (
            "BTC/USD",
            0.4,
            "0.2",
            "crypto cannot be sold short: holds 0.5, sell 0.4 (0.2 not held for open orders)",
        ),
    ],
)
def test_a_crypto_short_is_refused_before_sending(
    alpaca_server: HTTPServer,
    fake: FakeAlpaca,
    broker: AlpacaBroker,
    symbol: str,
    qty: float,
    available: str,
    reason: str,
) -> None:
    fake.positions[0]["qty_available"] = available

    with pytest.raises(OrderRefused) as caught:
        broker.submit(an_order("hydra-exit-1", symbol, Side.SELL, qty))

    assert caught.value.reason == reason
    assert posts(alpaca_server) == 0
    assert ("GET", "/v2/positions") in seen(alpaca_server)


def test_a_crypto_sell_within_the_position_is_sent(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    placed = broker.submit(an_order("hydra-exit-1", "BTC/USD", Side.SELL, 0.5))

    assert seen(alpaca_server) == [("GET", "/v2/positions"), ("POST", ORDERS)]
    assert fake.posted[0]["side"] == "sell"
    assert placed.side is Side.SELL


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (
            an_order(order_type="stop_limit", limit_price=99.0),
            "a stop_limit order needs a stop price, which HYDRA's Order does not carry",
        ),
        (
            an_order("hydra-btc-sl", "BTC/USD", qty=0.1, order_type="stop_limit", limit_price=99.0),
            "a stop_limit order needs a stop price",
        ),
        (
            an_order(qty=1.5, order_type="limit", limit_price=100.0),
            "fractional equity orders must be market orders (day): qty 1.5, type limit",
        ),
        (an_order(order_type="limit", limit_price=0.0), "a limit order needs a positive limit price, got 0.0"),
        (an_order(order_type="limit", limit_price=math.nan), "a limit order needs a positive limit price, got nan"),
        (an_order(qty=1e-12), "rounds to 0 at Alpaca's 9 decimals"),
    ],
)
def test_orders_breaking_alpacas_rules_are_refused_without_a_request(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker, order: Order, reason: str
) -> None:
    with pytest.raises(OrderRefused) as caught:
        broker.submit(order)

    assert reason in caught.value.reason
    assert alpaca_server.log == []


def test_a_fractional_equity_market_order_is_sent(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    broker.submit(an_order(qty=1.5))

    assert fake.posted[0]["qty"] == 1.5
    assert fake.posted[0]["time_in_force"] == "day"


# --- reading orders --------------------------------------------------------------------------


def test_a_partial_fill_then_the_fill_yield_two_fills_at_the_implied_prices(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    client_id = fake.put("order_partially_filled.json")["client_order_id"]

    partial = broker.order(client_id)
    assert partial is not None
    assert (partial.status, partial.filled_qty, partial.filled_avg_price) == (OrderStatus.PARTIALLY_FILLED, 0.4, 100.0)
    assert partial.symbol == "BTC/USD"
    first = new_fill(partial, 0.0, None, broker.fee, NOW)

    fake.put("order_filled.json")
    filled = broker.order(client_id)
    assert filled is not None
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == (OrderStatus.FILLED, 1.0, 101.0)
    second = new_fill(filled, partial.filled_qty, partial.filled_avg_price, broker.fee, NOW)

    assert first is not None and second is not None
    assert (first.qty, first.price) == (0.4, 100.0)
    assert second.qty == pytest.approx(0.6)
    assert second.price == pytest.approx(101.6667, abs=1e-4)
    assert first.qty + second.qty == pytest.approx(1.0)
    assert first.qty * first.price + second.qty * second.price == pytest.approx(1.0 * 101.0)
    assert first.fee == pytest.approx(0.1)
    assert first.fee + second.fee == pytest.approx(broker.fee(filled.symbol, 1.0 * 101.0))
    assert first.fill_id != second.fill_id
    assert new_fill(filled, filled.filled_qty, filled.filled_avg_price, broker.fee, NOW) is None


@pytest.mark.parametrize(
    ("alpaca_status", "filled_qty", "expected", "reason"),
    [
        ("new", "0", OrderStatus.NEW, None),
        ("accepted", "0", OrderStatus.ACCEPTED, None),
        ("pending_new", "0", OrderStatus.ACCEPTED, "alpaca status pending_new"),
        ("partially_filled", "0.4", OrderStatus.PARTIALLY_FILLED, None),
        ("filled", "1", OrderStatus.FILLED, None),
        ("canceled", "0", OrderStatus.CANCELED, None),
        ("canceled", "0.4", OrderStatus.CANCELED, None),
        ("expired", "0", OrderStatus.EXPIRED, None),
        ("rejected", "0", OrderStatus.REJECTED, None),
        ("replaced", "0", OrderStatus.CANCELED, "alpaca status replaced (by order "),
        ("done_for_day", "0.4", OrderStatus.PARTIALLY_FILLED, "alpaca status done_for_day"),
        ("done_for_day", "0", OrderStatus.ACCEPTED, "alpaca status done_for_day"),
        ("pending_cancel", "0", OrderStatus.ACCEPTED, "alpaca status pending_cancel"),
        ("pending_replace", "0.4", OrderStatus.PARTIALLY_FILLED, "alpaca status pending_replace"),
        ("pending_review", "0", OrderStatus.ACCEPTED, "alpaca status pending_review"),
        ("accepted_for_bidding", "0", OrderStatus.ACCEPTED, "alpaca status accepted_for_bidding"),
        ("stopped", "0", OrderStatus.ACCEPTED, "alpaca status stopped"),
        ("suspended", "0", OrderStatus.ACCEPTED, "alpaca status suspended"),
        ("calculated", "1", OrderStatus.PARTIALLY_FILLED, "alpaca status calculated"),
        ("held", "0", OrderStatus.ACCEPTED, "alpaca status held"),
        ("some_future_status", "0", OrderStatus.ACCEPTED, "alpaca status some_future_status"),
    ],
)
def test_alpaca_statuses_map_conservatively(
    fake: FakeAlpaca,
    broker: AlpacaBroker,
    alpaca_status: str,
    filled_qty: str,
    expected: OrderStatus,
    reason: str | None,
) -> None:
    replaced_by = "7a1f1b1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b" if alpaca_status == "replaced" else None
    fake.put("order_accepted.json", "hydra-1", status=alpaca_status, filled_qty=filled_qty, replaced_by=replaced_by)

    found = broker.order("hydra-1")

    assert found is not None
    assert found.status is expected
    if reason is None:
        assert found.status_reason is None
    else:
        assert found.status_reason is not None and found.status_reason.startswith(reason)
    if replaced_by is not None:
        assert replaced_by in str(found.status_reason)


def test_an_unknown_client_order_id_is_none(alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    assert broker.order("hydra-never-sent") is None
    assert alpaca_server.log[0][0].args["client_order_id"] == "hydra-never-sent"


def test_open_orders_asks_for_every_open_order(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.put("order_accepted.json")
    fake.put("order_filled.json")
    fake.put("order_partially_filled.json", "hydra-cascade-ETH-1", symbol="ETH/USD")

    found = broker.open_orders()

    request = alpaca_server.log[0][0]
    assert request.args.to_dict() == {"status": "open", "limit": "500"}
    assert {(o.client_order_id, o.symbol, o.status) for o in found} == {
        ("hydra-momentum-SPY-20260302T1515", "SPY", OrderStatus.ACCEPTED),
        ("hydra-cascade-ETH-1", "ETH/USD", OrderStatus.PARTIALLY_FILLED),
    }


# --- cancel ----------------------------------------------------------------------------------


def test_executions_are_alpacas_fill_activities_oldest_first_over_pages(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    since = NOW - timedelta(hours=1)
    fake.trade_by_hand("SPY", "buy", 1.0, 500.0, since - timedelta(seconds=1))  # before `since`: left out
    for i in range(ACTIVITIES_PAGE_MAX):
        fake.trade_by_hand("SPY", "sell", 0.5, 500.0 + i, since + timedelta(seconds=i + 1))
    short = fake.trade_by_hand("GLD", "sell", 3.0, 190.25, since + timedelta(minutes=5))
    fake.activities[-1]["side"] = "sell_short"  # how Alpaca names a sale that opens a short
    fake.trade_by_hand("BTCUSD", "buy", 0.25, 65_000.0, since + timedelta(minutes=6))

    executions = broker.executions(since)
    assert len(executions) == ACTIVITIES_PAGE_MAX + 2
    assert [e.ts for e in executions] == sorted(e.ts for e in executions)
    assert (executions[0].side, executions[0].qty, executions[0].price) == (Side.SELL, 0.5, 500.0)
    gld, btc = executions[-2:]
    assert (gld.symbol, gld.side, gld.qty, gld.price, gld.broker_order_id) == (
        "GLD",
        Side.SELL,
        3.0,
        190.25,
        short["id"],
    )
    assert btc.symbol == "BTC/USD"  # activities name crypto without the slash
    pages = [request.args for request, _ in alpaca_server.log if request.path == ACTIVITIES]
    assert [(page["activity_types"], page["direction"], "page_token" in page) for page in pages] == [
        ("FILL", "asc", False),
        ("FILL", "asc", True),
    ]


def test_cancel_of_a_working_order_deletes_it_at_alpaca(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    order = fake.put("order_accepted.json", "hydra-1")

    broker.cancel("hydra-1")

    assert ("DELETE", f"{ORDERS}/{order['id']}") in seen(alpaca_server)
    found = broker.order("hydra-1")
    assert found is not None and found.status is OrderStatus.CANCELED


@pytest.mark.parametrize("alpaca_status", ["filled", "canceled", "pending_cancel"])
def test_cancel_of_a_finished_or_cancelling_order_is_a_no_op(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker, alpaca_status: str
) -> None:
    fake.put("order_filled.json", "hydra-1", status=alpaca_status)

    broker.cancel("hydra-1")
    broker.cancel("hydra-never-sent")

    assert [method for method, _ in seen(alpaca_server)] == ["GET", "GET"]


def test_cancel_losing_the_race_to_a_fill_is_a_no_op(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    order = fake.put("order_partially_filled.json", "hydra-1")

    def fill_first(request: Request) -> Response:
        order.update(status="filled", filled_qty="1", filled_avg_price="101")
        return fake.cancel(order["id"])

    fake.script["DELETE", f"{ORDERS}/{order['id']}"].append(fill_first)

    broker.cancel("hydra-1")

    assert seen(alpaca_server) == [("GET", BY_CLIENT_ID), ("DELETE", f"{ORDERS}/{order['id']}"), ("GET", BY_CLIENT_ID)]
    assert alpaca_server.log[1][1].status_code == 422


def test_a_cancel_that_fails_is_a_broker_error(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    order = fake.put("order_accepted.json", "hydra-1")
    fake.script["DELETE", f"{ORDERS}/{order['id']}"].append(lambda _: reply(payload("error_500.json"), 500))

    with pytest.raises(BrokerError, match="HTTP 500"):
        broker.cancel("hydra-1")


# --- account, positions, clock, fees ---------------------------------------------------------


def test_positions_map_crypto_back_to_the_order_form_with_signed_quantities(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    positions = {position.symbol: position for position in broker.positions()}

    assert set(positions) == {"BTC/USD", "SPY", "TLT"}
    btc, spy, tlt = positions["BTC/USD"], positions["SPY"], positions["TLT"]
    assert (btc.qty, btc.avg_entry_price, btc.market_value) == (0.5, 64210.5, 32651.25)
    assert (spy.qty, spy.avg_entry_price, spy.market_value) == (10.0, 512.34, 5146.1)
    assert (tlt.qty, tlt.market_value) == (-7.0, -655.0)


def test_crypto_positions_of_other_quotes_and_without_an_asset_class_are_mapped(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    template = fake.positions[0]
    fake.positions = [
        template | {"symbol": "ETHBTC"},
        template | {"symbol": "SOLUSDT"},
        {key: value for key, value in template.items() if key != "asset_class"} | {"symbol": "ETHUSD"},
    ]

    assert [position.symbol for position in broker.positions()] == ["ETH/BTC", "SOL/USDT", "ETH/USD"]


def test_the_account_turns_alpacas_strings_into_numbers(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    account = broker.account()

    assert (account.cash, account.equity, account.buying_power) == (93726.18, 100512.44, 187452.36)


def test_the_clock_is_read_in_utc(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    assert broker.clock() == MarketClock(
        timestamp=datetime(2026, 3, 2, 15, 15, 30, 123456, tzinfo=UTC),
        is_open=True,
        next_open=datetime(2026, 3, 3, 14, 30, tzinfo=UTC),
        next_close=datetime(2026, 3, 2, 21, 0, tzinfo=UTC),
    )


def test_a_malformed_answer_is_a_broker_error(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.script["GET", "/v2/account"].append(lambda _: reply({"cash": "lots"}))
    fake.script["GET", "/v2/clock"].append(lambda _: Response("<html>maintenance</html>", content_type="text/html"))

    with pytest.raises(BrokerError, match="cash is not a number"):
        broker.account()
    with pytest.raises(BrokerError, match="JSONDecodeError"):
        broker.clock()


def test_fees_are_zero_on_equities_and_taker_bps_on_crypto(alpaca_server: HTTPServer) -> None:
    assert make_broker(alpaca_server).fee("SPY", 10_000.0) == 0.0
    assert make_broker(alpaca_server).fee("BTC/USD", 10_000.0) == pytest.approx(25.0)
    assert make_broker(alpaca_server, crypto_fee_bps=15.0).fee("ETH/USD", -2_000.0) == pytest.approx(3.0)


# --- construction and secrets ----------------------------------------------------------------


def test_missing_keys_and_the_live_endpoint_are_refused() -> None:
    with pytest.raises(ValueError, match="ALPACA_API_KEY"):
        AlpacaBroker(API_KEY, "")
    with pytest.raises(ValueError, match="paper only"):
        AlpacaBroker(API_KEY, SECRET_KEY, "https://api.alpaca.markets/")


def test_keys_never_appear_in_errors_logs_or_repr(
    alpaca_server: HTTPServer, fake: FakeAlpaca, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(status: int, code: int) -> Handler:
        """An error body that quotes the request's headers, keys included."""
        return lambda request: reply({"code": code, "message": f"echo {dict(request.headers)}"}, status)

    broker = make_broker(alpaca_server)
    fake.script["GET", "/v2/account"].extend([echo(500, 50010000)] * (RETRIES + 1))
    fake.script["GET", "/v2/positions"].append(echo(403, 40110000))
    fake.script["POST", ORDERS].extend([echo(422, 40010001), echo(403, 40310000), echo(401, 40110000)])
    fake.script["GET", "/v2/clock"].append(lambda request: reply({"is_open": str(dict(request.headers))}))
    caught: list[BaseException] = []
    calls: list[Callable[[], object]] = [
        broker.account,
        broker.positions,
        lambda: broker.submit(an_order("hydra-a", "BTC/USD", qty=0.1)),
        lambda: broker.submit(an_order("hydra-b", "BTC/USD", qty=0.1)),
        lambda: broker.submit(an_order("hydra-c", "BTC/USD", qty=0.1)),
        broker.clock,
    ]
    with caplog.at_level(logging.DEBUG):
        for call in calls:
            with pytest.raises(BrokerError) as error:
                call()
            caught.append(error.value)
        with pytest.raises(BrokerError) as unreachable:
            AlpacaBroker(API_KEY, SECRET_KEY, closed_port_url(), timeout_s=0.5, max_retries=0).account()
        caught.append(unreachable.value)

    assert [type(error) for error in caught] == [
        AlpacaApiError,
        AlpacaApiError,
        OrderRefused,
        OrderRefused,
        BrokerUnauthorized,
        BrokerError,
        AlpacaUnreachable,
    ]
    assert "***" in str(caught[0])
    texts = ["".join(traceback.format_exception(error)) + repr(error) for error in caught]
    texts += [caplog.text, repr(broker), str(broker)]
    for text in texts:
        assert API_KEY not in text
        assert SECRET_KEY not in text


# --- retries of reads ------------------------------------------------------------------------


def test_a_server_error_on_a_read_is_retried_and_the_read_succeeds(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    placed = broker.submit(an_order())
    fake.script["GET", ORDERS].append(lambda _: reply(payload("error_500.json"), 500))

    [found] = broker.recent_orders(datetime(2026, 3, 2, tzinfo=UTC))

    assert found.client_order_id == placed.client_order_id
    assert seen(alpaca_server).count(("GET", ORDERS)) == 2


def test_a_timed_out_read_is_retried(alpaca_server: HTTPServer, fake: FakeAlpaca) -> None:
    def stall(request: Request) -> Response:
        time.sleep(0.6)
        return reply(fake.positions)

    fake.script["GET", "/v2/positions"].append(stall)

    positions = make_broker(alpaca_server, timeout_s=0.2).positions()

    assert [position.symbol for position in positions] == ["BTC/USD", "SPY", "TLT"]


def test_a_rate_limited_read_waits_what_alpaca_asks_and_no_longer_than_max_wait(
    alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    def limited(seconds: str) -> Handler:
        return lambda _: Response(
            json.dumps(payload("error_429.json")), 429, {"Retry-After": seconds}, content_type="application/json"
        )

    waits: list[float] = []
    broker = make_broker(alpaca_server, max_wait_s=5.0, sleep=waits.append)
    fake.script["GET", "/v2/clock"].append(limited("2"))
    assert broker.clock().is_open
    assert waits == [2.0]

    fake.script["GET", "/v2/clock"].append(limited("60"))
    with pytest.raises(AlpacaApiError, match="HTTP 429"):
        broker.clock()
    assert waits == [2.0]  # a minute is past max_wait_s: the next cycle asks again
    assert seen(alpaca_server).count(("GET", "/v2/clock")) == 3


def test_a_submit_is_not_retried_on_a_server_error_nor_a_timeout(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    # Either may hide a placed order: the next cycle looks it up by its client id instead.
    fake.script["POST", ORDERS].append(lambda _: reply(payload("error_500.json"), 500))
    with pytest.raises(AlpacaApiError):
        broker.submit(an_order())
    assert posts(alpaca_server) == 1


def test_refused_keys_are_one_line_that_says_which_to_check(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.script["GET", "/v2/account"].append(lambda _: reply(payload("error_401_unauthorized.json"), 401))

    with pytest.raises(BrokerUnauthorized) as caught:
        broker.account()

    message = str(caught.value)
    assert message == (
        "alpaca account: HTTP 401 request is not authorized: Alpaca refused the keys:"
        " check ALPACA_API_KEY and ALPACA_SECRET_KEY"
    )
    assert seen(alpaca_server) == [("GET", "/v2/account")]  # keys refused once are refused again


# --- Alpaca's short-sale and asset rules, checked before sending ----------------------------


def no_shorting(fake: FakeAlpaca) -> None:
    fake.account["shorting_enabled"] = False


def gld_not_shortable(fake: FakeAlpaca) -> None:
    fake.assets["GLD"]["shortable"] = False


def gld_not_tradable(fake: FakeAlpaca) -> None:
    fake.assets["GLD"]["tradable"] = False


def as_is(fake: FakeAlpaca) -> None:
    pass


SHORT_RULES = [
    # (state of the account, the order, HYDRA's code, Alpaca's answer to the same order)
    (
        no_shorting,
        an_order("hy-s1", "GLD", Side.SELL, 5.0),
        RefusalCode.SHORTING_DISABLED,
        "error_403_shorting_disabled",
    ),
    (gld_not_shortable, an_order("hy-s2", "GLD", Side.SELL, 5.0), RefusalCode.NOT_SHORTABLE, "error_422_not_shortable"),
    (
        as_is,
        an_order("hy-s3", "GLD", Side.SELL, 11.790135587),
        RefusalCode.FRACTIONAL_SHORT,
        "error_422_fractional_short",
    ),
    (gld_not_tradable, an_order("hy-s4", "GLD", Side.BUY, 5.0), RefusalCode.NOT_TRADABLE, "error_422_not_tradable"),
    (as_is, an_order("hy-s5", "BRK.A", Side.BUY, 1.5), RefusalCode.NOT_FRACTIONABLE, "error_422_not_fractionable"),
    (as_is, an_order("hy-s6", "ETH/USD", Side.SELL, 0.5), RefusalCode.CRYPTO_SHORT, "error_403_insufficient_qty"),
    (as_is, an_order("hy-s7", "SPY", Side.SELL, 15.0), RefusalCode.INSUFFICIENT_QTY, "error_403_insufficient_qty"),
]


@pytest.mark.parametrize(("setup", "order", "code", "answer"), SHORT_RULES)
def test_orders_alpaca_would_refuse_on_its_flags_are_refused_before_sending(
    alpaca_server: HTTPServer,
    fake: FakeAlpaca,
    broker: AlpacaBroker,
    setup: Callable[[FakeAlpaca], None],
    order: Order,
    code: RefusalCode,
    answer: str,
) -> None:
    setup(fake)

    with pytest.raises(OrderRefused) as caught:
        broker.submit(order)

    assert caught.value.code is code
    expected_kind = RefusalKind.TRANSIENT if code is RefusalCode.INSUFFICIENT_QTY else RefusalKind.PERMANENT
    assert caught.value.kind is expected_kind
    assert posts(alpaca_server) == 0


@pytest.mark.parametrize(("setup", "order", "code", "answer"), SHORT_RULES)
def test_the_fake_refuses_what_alpaca_refuses_and_hydra_reads_its_answer_as_the_same_code(
    alpaca_server: HTTPServer,
    fake: FakeAlpaca,
    broker: AlpacaBroker,
    setup: Callable[[FakeAlpaca], None],
    order: Order,
    code: RefusalCode,
    answer: str,
) -> None:
    setup(fake)
    body = {
        "symbol": order.symbol,
        "qty": order.qty,
        "side": order.side.value,
        "type": "market",
        "time_in_force": "gtc" if "/" in order.symbol else "day",
        "client_order_id": order.client_order_id,
    }
    raw = requests.post(alpaca_server.url_for(ORDERS), json=body, timeout=5)
    expected = payload(f"{answer}.json")
    assert (raw.status_code, raw.json()["code"]) == (int(answer.split("_")[1]), expected["code"])
    assert fake.orders == {}

    # Alpaca's answer, had HYDRA sent the order (its flags read before they changed), is the same refusal.
    fake.script["POST", ORDERS].append(lambda _: Response(raw.content, raw.status_code))
    sent_anyway = replace(order, side=Side.BUY) if order.side is Side.SELL else replace(order, qty=2.0)
    with pytest.raises(OrderRefused) as caught:
        make_broker(alpaca_server).submit(replace(sent_anyway, symbol="SPY"))
    assert caught.value.code is (RefusalCode.INSUFFICIENT_QTY if code is RefusalCode.CRYPTO_SHORT else code)


def test_the_fake_keeps_alpacas_crypto_time_in_force_and_wash_trade_rules(
    alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    day = {"symbol": "BTC/USD", "qty": 0.1, "side": "buy", "type": "market", "time_in_force": "day"}
    raw = requests.post(alpaca_server.url_for(ORDERS), json=day | {"client_order_id": "hy-c1"}, timeout=5)
    assert (raw.status_code, raw.json()["message"]) == (422, "invalid crypto time_in_force")

    broker.submit(an_order("hy-w1", "SPY", Side.BUY, 5.0))
    with pytest.raises(OrderRefused) as caught:
        broker.submit(an_order("hy-w2", "SPY", Side.SELL, 5.0))
    assert caught.value.reason == "Alpaca: potential wash trade detected. use complex orders"
    assert (caught.value.code, caught.value.kind) == (RefusalCode.WASH_TRADE, RefusalKind.TRANSIENT)


def test_an_alpaca_refusal_of_crypto_time_in_force_and_buying_power_carry_their_codes(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    for answer, code in [
        ("error_422_crypto_time_in_force", RefusalCode.CRYPTO_TIME_IN_FORCE),
        ("error_403_insufficient_buying_power", RefusalCode.INSUFFICIENT_BUYING_POWER),
    ]:
        fake.script["POST", ORDERS].append(
            lambda _, answer=answer: reply(payload(f"{answer}.json"), int(answer.split("_")[1]))
        )
        with pytest.raises(OrderRefused) as caught:
            broker.submit(an_order(f"hy-{code}", "BTC/USD", Side.BUY, 0.1))
        assert caught.value.code is code


def test_flags_are_read_once_a_session(alpaca_server: HTTPServer, fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.positions = []
    broker.submit(an_order("hy-f1", "GLD", Side.SELL, 5.0))
    fake.script["POST", ORDERS].append(lambda _: reply(payload("error_403_insufficient_buying_power.json"), 403))
    with pytest.raises(OrderRefused):
        broker.submit(an_order("hy-f2", "GLD", Side.SELL, 3.0))
    assert seen(alpaca_server).count(("GET", "/v2/assets/GLD")) == 1
    assert seen(alpaca_server).count(("GET", "/v2/account")) == 1

    # The next session reads them again: Alpaca may have stopped lending GLD overnight.
    fake.clock = fake.clock | {"next_close": "2026-03-03T16:00:00-05:00"}
    fake.assets["GLD"]["shortable"] = False
    with pytest.raises(OrderRefused) as caught:
        broker.submit(an_order("hy-f3", "GLD", Side.SELL, 3.0))
    assert caught.value.code is RefusalCode.NOT_SHORTABLE
    assert seen(alpaca_server).count(("GET", "/v2/assets/GLD")) == 2
