"""The trading session against Alpaca paper (a local server in Alpaca's formats, the real
alpaca-py client): restart safety, crash recovery and reconciliation, checked in the warehouse."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_alpaca import ORDERS, FakeAlpaca, decimal_text, payload
from lock_holder import hold_lock
from paper_session import MINUTE, RUN, START, resume_session, step
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.types import Order
from hydra.live import due_feeds, every_minute
from hydra.trading import AlreadyDecided, TradingSession
from warehouse import Warehouse, WarehouseLockedError


@pytest.fixture
def fake(alpaca_server: HTTPServer) -> FakeAlpaca:
    alpaca = FakeAlpaca(alpaca_server)
    alpaca.positions = []
    return alpaca


FILLED_AT = datetime(2026, 3, 2, 15, 0, 1, tzinfo=UTC)


def resume(warehouse: Warehouse, alpaca_server: HTTPServer) -> TradingSession:
    return resume_session(warehouse, alpaca_server.url_for("").rstrip("/"))


def rows(warehouse: Warehouse, sql: str, **params: object) -> list[tuple[Any, ...]]:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql, {"run_id": RUN, **params}).fetchall()


def fill_at_alpaca(fake: FakeAlpaca, client_id: str, price: float) -> None:
    order = fake.orders[client_id]
    fake.execute(order, float(order["qty"]), price, FILLED_AT)
    hold_at_alpaca(fake, "SPY", float(order["qty"]), price)


def hold_at_alpaca(fake: FakeAlpaca, symbol: str, qty: float, price: float) -> None:
    """Alpaca's position in `symbol` becomes `qty` (long) bought at `price`; 0 closes it."""
    others = [p for p in fake.positions if p["symbol"] != symbol]
    held = payload("positions.json")[0] | {
        "symbol": symbol,
        "asset_class": "us_equity",
        "qty": decimal_text(qty),
        "avg_entry_price": decimal_text(price),
        "market_value": decimal_text(qty * price),
        "side": "long",
    }
    fake.positions = others + ([held] if qty else [])


def cancel_working(fake: FakeAlpaca) -> None:
    """Cancel the buys HYDRA left working, as a person closing the position by hand would."""
    for working in fake.orders.values():
        if working["status"] == "accepted":
            working["status"] = "canceled"


def test_an_order_whose_answer_was_lost_in_a_crash_is_found_and_recorded_once(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    # Another process takes the warehouse the moment Alpaca accepts the order, past the
    # session's deadline: recording the answer fails and the run dies, as in a crash.
    holders = []

    def accept_then_lock(request: Request) -> Response:
        answer = fake.place(request)
        holders.append(hold_lock(warehouse.path, 30.0))
        return answer

    fake.script[("POST", ORDERS)].append(accept_then_lock)
    crashed = resume(Warehouse(warehouse.path, lock_deadline_s=0.3), alpaca_server)
    try:
        with pytest.raises(WarehouseLockedError):
            step(crashed, now)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait(timeout=10)
    [client_id] = fake.orders
    assert rows(warehouse, "SELECT client_order_id, status FROM orders WHERE run_id = $run_id") == [
        (client_id, "pending")  # written before it was sent
    ]

    fill_at_alpaca(fake, client_id, 503.0)
    restarted = resume(warehouse, alpaca_server)
    assert set(restarted.tracked) == {client_id}
    step(restarted, now + MINUTE)
    step(restarted, now + 2 * MINUTE)
    again = resume(warehouse, alpaca_server)  # and a third process, to be sure nothing doubles
    step(again, now + 3 * MINUTE)

    entry = rows(
        warehouse,
        "SELECT status, filled_qty, filled_avg_price FROM orders WHERE run_id = $run_id AND client_order_id = $id",
        id=client_id,
    )
    assert entry == [("filled", float(fake.orders[client_id]["qty"]), 503.0)]
    assert rows(warehouse, "SELECT count(*), sum(qty) FROM fills WHERE run_id = $run_id") == [
        (1, float(fake.orders[client_id]["qty"]))
    ]
    [trade] = rows(warehouse, "SELECT trade_id, entry_price, status FROM trades WHERE run_id = $run_id")
    assert trade == (client_id, 503.0, "open")
    # The buy was sent once, whatever the retries and restarts.
    assert sum(1 for request, _ in alpaca_server.log if (request.method, request.path) == ("POST", ORDERS)) == len(
        fake.orders
    )


def test_an_order_recorded_but_never_sent_is_closed_with_the_reason(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    # Alpaca is down for the submit (every retry gets a 500): the outcome is unknown.
    fake.script[("POST", ORDERS)] += [lambda request: Response("upstream", status=500)] * 2
    session = resume(warehouse, alpaca_server)
    record = step(session, now)
    [order] = record.result.orders
    assert fake.orders == {}
    assert rows(warehouse, "SELECT status FROM orders WHERE run_id = $run_id") == [("pending",)]

    later = resume(warehouse, alpaca_server)
    step(later, now + MINUTE)
    never_sent = "SELECT status, status_reason FROM orders WHERE run_id = $run_id AND client_order_id = $id"
    assert rows(warehouse, never_sent, id=order.client_order_id) == [
        ("canceled", "never reached the broker: the run stopped, or the request failed, before it arrived")
    ]
    assert rows(warehouse, "SELECT kind, subject FROM reconciliations WHERE run_id = $run_id") == [
        ("order_status", order.client_order_id)
    ]
    assert order.client_order_id not in later.state.pending_entries


def test_a_hydra_order_no_run_recorded_is_adopted_once(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    lost = fake.put(
        "order_filled.json",
        "hy-202603021500-cross_asset-SPY-0123456789",
        symbol="SPY",
        asset_class="us_equity",
        submitted_at="2026-03-02T15:00:00Z",
    )
    fake.put("order_filled.json", "manual-order-1", submitted_at="2026-03-02T15:01:00Z")  # not HYDRA's
    session = resume(warehouse, alpaca_server)
    [found] = session.adopt_unrecorded_orders(now, now)
    assert (found.kind, found.subject) == ("unrecorded_order", lost["client_order_id"])
    assert resume(warehouse, alpaca_server).adopt_unrecorded_orders(now, now) == []
    assert rows(warehouse, "SELECT client_order_id, strategy, status FROM orders WHERE run_id = $run_id") == [
        (lost["client_order_id"], "cross_asset", "filled")
    ]


def held_spy_at_503(warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca, now: datetime) -> Order:
    """The session's SPY entry at `now`, filled at Alpaca at 503.0 and booked by the next cycle."""
    session = resume(warehouse, alpaca_server)
    [order] = step(session, now).result.orders
    fill_at_alpaca(fake, order.client_order_id, 503.0)
    step(session, now + MINUTE)
    return order


def test_a_position_closed_at_the_broker_is_closed_in_the_warehouse_as_reconcile(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    order = held_spy_at_503(warehouse, alpaca_server, fake, now)
    assert rows(warehouse, "SELECT status FROM trades WHERE run_id = $run_id") == [("open",)]

    fake.positions = []  # closed by hand in Alpaca's dashboard, with the buy the last cycle left working
    cancel_working(fake)
    step(resume(warehouse, alpaca_server), now + 2 * MINUTE)
    assert rows(warehouse, "SELECT status, exit_reason FROM trades WHERE run_id = $run_id ORDER BY entry_ts")[0] == (
        "closed",
        "reconcile",
    )
    [(kind, subject, managed, held)] = rows(
        warehouse,
        "SELECT kind, subject, warehouse_value, broker_value FROM reconciliations WHERE run_id = $run_id",
    )
    assert (kind, subject, held) == ("position_mismatch", "SPY", "0")
    assert float(managed) == float(fake.orders[order.client_order_id]["qty"])


def test_a_position_closed_by_hand_is_closed_at_the_price_alpaca_filled(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    order = held_spy_at_503(warehouse, alpaca_server, fake, now)
    qty = float(fake.orders[order.client_order_id]["qty"])

    cancel_working(fake)
    sold_at = 503.0 + 7.12 / qty  # closed in Alpaca's dashboard, 7.12 dollars up
    fake.trade_by_hand("SPY", "sell", qty, sold_at, now + MINUTE + timedelta(seconds=30))
    hold_at_alpaca(fake, "SPY", 0.0, 503.0)
    step(resume(warehouse, alpaca_server), now + 2 * MINUTE)

    [(status, reason, exit_price, pnl)] = rows(
        warehouse,
        "SELECT status, exit_reason, exit_price, pnl FROM trades WHERE run_id = $run_id AND trade_id = $id",
        id=order.client_order_id,
    )
    assert (status, reason) == ("closed", "reconcile")
    assert exit_price == pytest.approx(sold_at)
    assert pnl == pytest.approx(7.12)


def test_a_position_closed_by_hand_in_two_halves_keeps_each_half_s_pnl(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    order = held_spy_at_503(warehouse, alpaca_server, fake, now)
    qty = float(fake.orders[order.client_order_id]["qty"])
    trade = "SELECT status, qty, pnl, exit_price FROM trades WHERE run_id = $run_id AND trade_id = $id"

    cancel_working(fake)
    fake.trade_by_hand("SPY", "sell", qty / 2, 510.0, now + MINUTE + timedelta(seconds=30))
    hold_at_alpaca(fake, "SPY", qty / 2, 503.0)
    halved = resume(warehouse, alpaca_server)
    step(halved, now + 2 * MINUTE)
    [(status, entered, pnl, _)] = rows(warehouse, trade, id=order.client_order_id)
    assert (status, entered) == ("open", qty)  # half is still held: the trade stays open
    assert pnl == pytest.approx(7.0 * qty / 2)
    [position] = halved.state.positions
    assert position.qty == pytest.approx(qty / 2)

    cancel_working(fake)
    fake.trade_by_hand("SPY", "sell", qty / 2, 506.0, now + 2 * MINUTE + timedelta(seconds=30))
    hold_at_alpaca(fake, "SPY", 0.0, 503.0)
    step(resume(warehouse, alpaca_server), now + 3 * MINUTE)
    [(status, _, pnl, exit_price)] = rows(warehouse, trade, id=order.client_order_id)
    # What the broker made: two sells of half against the buy at 503.
    assert (status, exit_price) == ("closed", 506.0)
    assert pnl == pytest.approx((510.0 - 503.0) * qty / 2 + (506.0 - 503.0) * qty / 2)


def test_an_excess_the_broker_holds_is_recorded_once_per_difference(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    hold_at_alpaca(fake, "TLT", 10.0, 90.0)  # bought by hand: HYDRA never managed it
    session = resume(warehouse, alpaca_server)
    for minute in range(3):
        step(session, now + minute * MINUTE)
    hold_at_alpaca(fake, "TLT", 12.0, 90.0)  # a new difference
    for minute in range(3, 5):
        step(resume(warehouse, alpaca_server), now + minute * MINUTE)
    assert rows(
        warehouse,
        "SELECT broker_value, resolution FROM reconciliations WHERE run_id = $run_id AND subject = 'TLT' "
        "ORDER BY ts_event",
    ) == [
        ("10", "broker holds more: the excess stays unmanaged"),
        ("12", "broker holds more: the excess stays unmanaged"),
    ]


def test_a_minute_already_decided_is_not_decided_again(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE
    step(resume(warehouse, alpaca_server), now)
    with pytest.raises(AlreadyDecided):
        step(resume(warehouse, alpaca_server), now)
    assert len(fake.orders) == 1


def test_sessions_of_two_threads_do_not_share_a_held_connection(warehouse: Warehouse) -> None:
    seen: dict[str, Any] = {}

    def other() -> None:
        with warehouse.connect() as con:
            seen["other"] = con

    with warehouse.held() as held, warehouse.connect() as inner:
        assert inner is held
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen["other"] is not held


def test_the_loop_calls_once_a_minute_a_few_seconds_in_and_feeds_run_on_their_intervals() -> None:
    moments = iter([START + timedelta(seconds=s) for s in (12, 13, 65, 66, 125, 126)])
    slept: list[float] = []
    seen: list[datetime] = []
    calls = every_minute(seen.append, 3, clock=lambda: next(moments), sleep=slept.append)
    assert calls == 3 and seen == [START + timedelta(seconds=s) for s in (12, 65, 125)]
    assert slept == [52.0, 59.0]  # to 5 s past each next minute

    schedules = {"bars": 60, "binance": 300}
    assert due_feeds(schedules, {}, START) == ["bars", "binance"]
    last = {"bars": START, "binance": START}
    assert due_feeds(schedules, last, START + MINUTE) == ["bars"]
    assert due_feeds(schedules, last, START + 5 * MINUTE) == ["bars", "binance"]


def test_an_order_found_after_a_duplicate_id_answer_goes_through_the_fill_path(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    now = START + 30 * MINUTE

    # Alpaca accepts the buy and fills it at once, but the answer is lost; alpaca-py's retry of
    # the POST then meets the id Alpaca already has: 422 "client_order_id must be unique".
    def accept_fill_then_duplicate(request: Request) -> Response:
        fake.place(request)
        fill_at_alpaca(fake, request.get_json()["client_order_id"], 503.0)
        return fake.place(request)

    fake.script[("POST", ORDERS)].append(accept_fill_then_duplicate)
    session = resume(warehouse, alpaca_server)
    [order] = step(session, now).result.orders
    step(resume(warehouse, alpaca_server), now + MINUTE)
    step(resume(warehouse, alpaca_server), now + 2 * MINUTE)

    qty = float(fake.orders[order.client_order_id]["qty"])
    assert rows(warehouse, "SELECT client_order_id, qty, price FROM fills WHERE run_id = $run_id") == [
        (order.client_order_id, qty, 503.0)
    ]
    assert rows(warehouse, "SELECT trade_id, qty, entry_price, status FROM trades WHERE run_id = $run_id") == [
        (order.client_order_id, qty, 503.0, "open")
    ]
    # The position is managed: no "broker holds more" difference is left unmanaged.
    assert rows(warehouse, "SELECT kind, subject FROM reconciliations WHERE run_id = $run_id") == []
