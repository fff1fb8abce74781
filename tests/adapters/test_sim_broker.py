"""The simulated broker: latency, prices, fees, refusals, partial fills and final states, by hand.

Unless a test says otherwise: 100,000 cash, slippage 10 bps, fee 10 bps, 10% of a bar's volume.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from adapters.broker import (
    Broker,
    BrokerError,
    BrokerOrder,
    OrderRefused,
    OrderStatus,
    RefusalCode,
    RefusalKind,
    new_fill,
)
from adapters.sim_broker import INSUFFICIENT_BUYING_POWER, Bar, SimBroker, SimBrokerState
from core.calendar import MarketCalendar, Sessions, market_calendar
from core.codec import decode, encode
from core.snapshot import micros
from core.types import Order, Side

BTC = "BTC/USD"
ETH = "ETH/USD"
SPY = "SPY"
MIN = timedelta(minutes=1)
# Wednesday 2026-03-04 15:00 UTC = 10:00 New York (EST): the US session is open.
T0 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def make_broker() -> SimBroker:
    return SimBroker(starting_cash=100_000.0, slippage_bps=10.0, fee_bps=10.0, max_volume_share=0.1)


def bar(
    ts: datetime,
    open_: float,
    high: float | None = None,
    low: float | None = None,
    close: float | None = None,
    volume: float | None = 1_000.0,
) -> Bar:
    """A bar of ts; high, low and close default to the open."""
    return Bar(
        ts,
        open_,
        open_ if high is None else high,
        open_ if low is None else low,
        open_ if close is None else close,
        volume,
    )


def step(
    broker: SimBroker, ts: datetime, *, btc: Bar | None = None, eth: Bar | None = None, spy: Bar | None = None
) -> list[BrokerOrder]:
    """Deliver the bars starting at ts, known at their close one minute later."""
    bars = {symbol: b for symbol, b in ((BTC, btc), (ETH, eth), (SPY, spy)) if b is not None}
    return broker.on_bar(bars, ts + MIN)


def order_of(broker: SimBroker, client_order_id: str) -> BrokerOrder:
    order = broker.order(client_order_id)
    assert order is not None, f"the broker has no order {client_order_id}"
    return order


def make_order(
    coid: str,
    side: Side = Side.BUY,
    qty: float = 10.0,
    symbol: str = BTC,
    ts: datetime = T0 + MIN,
    limit: float | None = None,
) -> Order:
    return Order(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=qty,
        strategy="test",
        intent="entry" if side is Side.BUY else "exit",
        decision_price=100.0,
        ts_event=ts,
        order_type="market" if limit is None else "limit",
        limit_price=limit,
    )


def test_sim_broker_meets_the_broker_protocol() -> None:
    broker: Broker = make_broker()
    assert broker.fee(BTC, 1_000.0) == pytest.approx(1.0)  # 1,000 x 10 bps


def test_market_buy_fills_at_the_next_bar_open_plus_slippage_never_on_the_decision_bar() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, 101.0, 99.0, 100.5))  # the decision bar, known at T0+1
    placed = broker.submit(make_order("buy-1"))
    assert placed.status is OrderStatus.NEW
    assert placed.filled_qty == 0.0
    assert placed.time_in_force == "gtc"
    assert broker.positions() == []
    assert broker.account().cash == 100_000.0

    changed = step(broker, T0 + MIN, btc=bar(T0 + MIN, 102.0, 103.0, 101.0, 102.5))
    filled = broker.order("buy-1")
    assert filled is not None
    assert changed == [filled]
    assert filled.status is OrderStatus.FILLED
    assert filled.filled_qty == 10.0
    # 102 x 1.001 = 102.102, not the decision bar's 100 or 100.5
    assert filled.filled_avg_price == pytest.approx(102.102)
    assert filled.updated_at == T0 + MIN
    # cash: 100,000 - 10 x 102.102 - fee 1,021.02 x 0.001 = 100,000 - 1,021.02 - 1.02102
    account = broker.account()
    assert account.cash == pytest.approx(98_977.95898)
    [position] = broker.positions()
    assert (position.symbol, position.qty) == (BTC, 10.0)
    assert position.avg_entry_price == pytest.approx(102.102)
    assert position.market_value == pytest.approx(1_025.0)  # 10 x close 102.5
    assert account.equity == pytest.approx(98_977.95898 + 1_025.0)
    assert broker.open_orders() == []


def test_an_order_never_fills_at_a_bar_that_started_before_its_decision() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    broker.submit(make_order("late", ts=T0 + 3 * MIN))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 101.0))
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 102.0))
    assert order_of(broker, "late").status is OrderStatus.NEW
    step(broker, T0 + 3 * MIN, btc=bar(T0 + 3 * MIN, 103.0))
    late = broker.order("late")
    assert late is not None
    assert late.status is OrderStatus.FILLED
    assert late.filled_avg_price == pytest.approx(103.103)  # 103 x 1.001


def test_a_sell_receives_the_open_less_slippage() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    broker.submit(make_order("buy"))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0))  # 10 @ 100.1, fee 1.001
    broker.submit(make_order("sell", Side.SELL, qty=4.0, ts=T0 + 2 * MIN))
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 104.0, close=104.0))
    sold = broker.order("sell")
    assert sold is not None
    assert sold.status is OrderStatus.FILLED
    assert sold.filled_avg_price == pytest.approx(103.896)  # 104 x 0.999
    # 100,000 - 1,001 - 1.001 + 4 x 103.896 - 415.584 x 0.001 = 98,997.999 + 415.584 - 0.415584
    account = broker.account()
    assert account.cash == pytest.approx(99_413.167416)
    [position] = broker.positions()
    assert position.qty == pytest.approx(6.0)
    assert position.avg_entry_price == pytest.approx(100.1)  # a reduction keeps the entry price
    assert account.equity == pytest.approx(99_413.167416 + 6 * 104.0)


def test_submit_is_idempotent_by_client_order_id() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    first = broker.submit(make_order("same"))
    again = broker.submit(make_order("same", qty=99.0))
    assert again == first
    assert len(broker.open_orders()) == 1
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0))
    after_fill = broker.submit(make_order("same"))
    assert after_fill.status is OrderStatus.FILLED
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 100.0))
    [position] = broker.positions()
    assert position.qty == 10.0  # one order, not two
    assert broker.account().cash == pytest.approx(98_997.999)  # 100,000 - 1,001 - 1.001


def test_crypto_cannot_be_sold_short() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    with pytest.raises(OrderRefused, match="insufficient qty available") as refused:
        broker.submit(make_order("short", Side.SELL, qty=1.0))
    assert refused.value.client_order_id == "short"
    assert broker.order("short") is None  # refused orders are not sent

    broker.submit(make_order("buy"))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0))  # holds 10
    broker.submit(make_order("sell-8", Side.SELL, qty=8.0, ts=T0 + 2 * MIN))
    with pytest.raises(OrderRefused, match="insufficient qty available"):
        broker.submit(make_order("sell-3", Side.SELL, qty=3.0, ts=T0 + 2 * MIN))  # 8 of 10 already claimed
    assert broker.submit(make_order("sell-2", Side.SELL, qty=2.0, ts=T0 + 2 * MIN)).status is OrderStatus.NEW


def test_sells_that_short_refuse_as_alpaca_does() -> None:
    broker = SimBroker(starting_cash=100_000.0, slippage_bps=0.0, fee_bps=0.0, unshortable=("GLD",))
    step(broker, T0, spy=bar(T0, 500.0))

    def refused(order: Order) -> tuple[RefusalCode, RefusalKind]:
        with pytest.raises(OrderRefused) as caught:
            broker.submit(order)
        assert broker.order(order.client_order_id) is None
        return caught.value.code, caught.value.kind

    # Shorts in whole shares, of shortable symbols only; crypto never.
    assert refused(make_order("gld", Side.SELL, 11.790135587, SPY)) == (
        RefusalCode.FRACTIONAL_SHORT,
        RefusalKind.PERMANENT,
    )
    assert refused(make_order("gld", Side.SELL, 5.0, "GLD")) == (RefusalCode.NOT_SHORTABLE, RefusalKind.PERMANENT)
    assert refused(make_order("btc", Side.SELL, 0.5, BTC)) == (RefusalCode.CRYPTO_SHORT, RefusalKind.PERMANENT)
    assert broker.submit(make_order("short", Side.SELL, 11.0, SPY)).status is OrderStatus.NEW

    # While that sell is open, a buy could trade against it: Alpaca's wash-trade refusal.
    assert refused(make_order("cover", Side.BUY, 11.0, SPY)) == (RefusalCode.WASH_TRADE, RefusalKind.TRANSIENT)
    step(broker, T0 + MIN, spy=bar(T0 + MIN, 500.0))
    # Short 11: a buy covers it, and does not turn it into a long.
    assert refused(make_order("cover", Side.BUY, 12.0, SPY, ts=T0 + 2 * MIN)) == (
        RefusalCode.INSUFFICIENT_QTY,
        RefusalKind.TRANSIENT,
    )
    assert broker.submit(make_order("cover", Side.BUY, 11.0, SPY, ts=T0 + 2 * MIN)).status is OrderStatus.NEW

    # A long is sold down to flat by one order, never through it into a short.
    step(broker, T0 + 2 * MIN, spy=bar(T0 + 2 * MIN, 500.0))
    broker.submit(make_order("long", Side.BUY, 4.0, SPY, ts=T0 + 3 * MIN))
    step(broker, T0 + 3 * MIN, spy=bar(T0 + 3 * MIN, 500.0))
    assert refused(make_order("flip", Side.SELL, 6.0, SPY, ts=T0 + 4 * MIN)) == (
        RefusalCode.INSUFFICIENT_QTY,
        RefusalKind.TRANSIENT,
    )
    assert broker.submit(make_order("flat", Side.SELL, 4.0, SPY, ts=T0 + 4 * MIN)).status is OrderStatus.NEW


def test_limit_orders_that_cannot_cross_are_no_wash_trade() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    broker.submit(make_order("buy", qty=10.0))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0))
    broker.submit(make_order("bid", qty=1.0, limit=95.0, ts=T0 + 2 * MIN))

    assert broker.submit(make_order("ask", Side.SELL, 1.0, limit=96.0, ts=T0 + 2 * MIN)).status is OrderStatus.NEW
    with pytest.raises(OrderRefused) as caught:
        broker.submit(make_order("hit", Side.SELL, 1.0, limit=95.0, ts=T0 + 2 * MIN))
    assert caught.value.code is RefusalCode.WASH_TRADE


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (datetime(2026, 3, 7, 17, 0, tzinfo=UTC), False),  # Saturday 12:00 New York
        (datetime(2026, 3, 4, 13, 0, tzinfo=UTC), False),  # Wednesday 08:00 EST
        (datetime(2026, 3, 6, 13, 45, tzinfo=UTC), False),  # Friday 08:45 EST
        (datetime(2026, 3, 9, 13, 45, tzinfo=UTC), True),  # Monday 09:45 EDT: the same UTC time, after DST
        (datetime(2026, 3, 4, 21, 0, tzinfo=UTC), False),  # Wednesday 16:00 EST: the close
        (datetime(2026, 11, 26, 15, 0, tzinfo=UTC), False),  # Thanksgiving 10:00 EST: an exchange holiday
        (datetime(2026, 7, 3, 14, 0, tzinfo=UTC), False),  # Friday 3 July 10:00 EDT: Independence Day observed
        (datetime(2026, 11, 27, 17, 59, tzinfo=UTC), True),  # the half day after Thanksgiving, 12:59 EST
        (datetime(2026, 11, 27, 18, 0, tzinfo=UTC), False),  # 13:00 EST: its early close
        (datetime(2026, 11, 30, 14, 30, tzinfo=UTC), True),  # Monday 09:30 EST
    ],
)
def test_equity_orders_are_refused_while_the_market_is_closed(now: datetime, accepted: bool) -> None:
    broker = make_broker()
    broker.on_bar({}, now)
    order = make_order("spy", symbol=SPY, qty=1.0, ts=now)
    if accepted:
        placed = broker.submit(order)
        assert placed.status is OrderStatus.NEW
        assert placed.time_in_force == "day"
    else:
        with pytest.raises(OrderRefused, match="market is closed"):
            broker.submit(order)
        assert broker.order("spy") is None


def test_clock_reports_the_simulated_time_and_the_us_session() -> None:
    broker = make_broker()
    with pytest.raises(BrokerError):
        broker.clock()
    broker.on_bar({}, T0)  # Wednesday 10:00 EST
    clock = broker.clock()
    assert clock.timestamp == T0
    assert clock.is_open
    assert clock.next_close == datetime(2026, 3, 4, 21, 0, tzinfo=UTC)
    assert clock.next_open == datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    friday_evening = datetime(2026, 3, 6, 22, 0, tzinfo=UTC)  # 17:00 EST
    broker.on_bar({}, friday_evening)
    clock = broker.clock()
    assert not clock.is_open
    assert clock.next_open == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)  # Monday 09:30 EDT
    assert clock.next_close == datetime(2026, 3, 9, 20, 0, tzinfo=UTC)


def test_the_clock_follows_the_exchange_calendar_through_holidays_and_half_days() -> None:
    broker = make_broker()
    broker.on_bar({}, datetime(2026, 11, 25, 22, 0, tzinfo=UTC))  # Wednesday evening before Thanksgiving
    clock = broker.clock()
    assert not clock.is_open
    assert clock.next_open == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # not Thursday: the half-day Friday
    assert clock.next_close == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # which closes at 13:00 EST
    broker.on_bar({}, datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thanksgiving, 10:00 EST
    assert not broker.clock().is_open
    broker.on_bar({}, datetime(2026, 11, 27, 17, 0, tzinfo=UTC))  # Friday 12:00 EST
    clock = broker.clock()
    assert clock.is_open
    assert clock.next_close == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert clock.next_open == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


def test_time_only_moves_forward() -> None:
    broker = make_broker()
    broker.on_bar({}, T0)
    with pytest.raises(ValueError, match="forward"):
        broker.on_bar({}, T0 - MIN)
    with pytest.raises(ValueError, match="aware"):
        broker.on_bar({}, datetime(2026, 3, 4, 16, 0))  # noqa: DTZ001


def test_a_buy_the_account_cannot_afford_is_rejected() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, close=100.5))
    # 1,000 x last close 100.5 = 100,500 (+ fee 100.5) > 100,000 cash
    rejected = broker.submit(make_order("too-big", qty=1_000.0))
    assert rejected.status is OrderStatus.REJECTED
    assert rejected.status_reason == INSUFFICIENT_BUYING_POWER
    assert broker.submit(make_order("too-big", qty=1_000.0)) == rejected
    assert broker.open_orders() == []
    # 995 x 100.5 = 99,997.5 is covered by the cash, but not with its fee of 99.9975
    assert broker.submit(make_order("no-room-for-fee", qty=995.0)).status is OrderStatus.REJECTED

    # 600 x 100.5 = 60,300 + 60.3 fee reserved; 39,639.7 left
    assert broker.submit(make_order("a", qty=600.0)).status is OrderStatus.NEW
    # 400 x 100.5 = 40,200 + 40.2 > 39,639.7
    assert broker.submit(make_order("b", qty=400.0)).status is OrderStatus.REJECTED
    # 390 x 100.5 = 39,195 + 39.195 = 39,234.195 fits
    assert broker.submit(make_order("c", qty=390.0)).status is OrderStatus.NEW
    account = broker.account()
    assert account.cash == 100_000.0
    assert account.buying_power == pytest.approx(405.505)  # 39,639.7 - 39,234.195

    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, volume=100_000.0))
    assert order_of(broker, "too-big").filled_qty == 0.0
    assert broker.positions()[0].qty == pytest.approx(990.0)


def test_a_bar_of_unknown_volume_puts_no_cap_on_fills() -> None:
    broker = make_broker()
    step(broker, T0, spy=bar(T0, 100.0, volume=None))  # index levels, a close-only file: no volume
    broker.submit(make_order("big", symbol=SPY, qty=15.0))

    step(broker, T0 + MIN, spy=bar(T0 + MIN, 100.0, volume=None))

    filled = order_of(broker, "big")
    assert (filled.status, filled.filled_qty) == (OrderStatus.FILLED, 15.0)


def test_an_order_larger_than_the_volume_share_fills_over_two_bars() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, volume=100.0))
    broker.submit(make_order("big", qty=15.0))

    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, volume=100.0))  # room 10% x 100 = 10
    first = broker.order("big")
    assert first is not None
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert first.filled_qty == pytest.approx(10.0)
    assert first.filled_avg_price == pytest.approx(100.1)
    assert broker.open_orders() == [first]

    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 110.0, volume=100.0))  # the last 5 @ 110.11
    second = broker.order("big")
    assert second is not None
    assert second.status is OrderStatus.FILLED
    assert second.filled_qty == 15.0
    # (10 x 100.1 + 5 x 110.11) / 15 = (1,001 + 550.55) / 15
    assert second.filled_avg_price == pytest.approx(1_551.55 / 15)

    fill_1 = new_fill(first, 0.0, None, broker.fee, T0 + MIN)
    fill_2 = new_fill(second, first.filled_qty, first.filled_avg_price, broker.fee, T0 + 2 * MIN)
    assert fill_1 is not None
    assert fill_2 is not None
    assert fill_1.qty == pytest.approx(10.0)
    assert fill_1.price == pytest.approx(100.1)
    assert fill_2.qty == pytest.approx(5.0)
    assert fill_2.price == pytest.approx(110.11)
    assert fill_1.qty + fill_2.qty == pytest.approx(15.0)
    assert fill_1.fill_id != fill_2.fill_id
    # Each part's fee is of its own notional, as the broker charged it.
    assert (fill_1.fee, fill_2.fee) == (pytest.approx(broker.fee(BTC, 1_001.0)), pytest.approx(broker.fee(BTC, 550.55)))
    assert fill_1.fee + fill_2.fee == pytest.approx(broker.export_state().fees)
    assert new_fill(second, second.filled_qty, second.filled_avg_price, broker.fee, T0 + 3 * MIN) is None
    # 100,000 - 1,001 - 1.001 - 550.55 - 0.55055
    assert broker.account().cash == pytest.approx(98_446.89845)


def test_each_fill_is_an_execution_kept_with_the_account() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, volume=100.0))
    broker.submit(make_order("big", qty=15.0))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, volume=100.0))
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 110.0, volume=100.0))
    executions = broker.executions(T0)
    assert [(e.symbol, e.side, e.qty, e.ts) for e in executions] == [
        (BTC, Side.BUY, pytest.approx(10.0), T0 + MIN),
        (BTC, Side.BUY, pytest.approx(5.0), T0 + 2 * MIN),
    ]
    assert [e.price for e in executions] == [pytest.approx(100.1), pytest.approx(110.11)]
    assert {e.broker_order_id for e in executions} == {order_of(broker, "big").broker_order_id}
    assert broker.executions(T0 + MIN) == executions[1:]  # only those after `since`

    restored = make_broker()  # a fresh process takes over the account, as stored in the warehouse
    restored.restore(decode(SimBrokerState, json.loads(json.dumps(encode(broker.export_state())))))
    assert restored.executions(T0) == executions


def test_a_completed_order_reports_exactly_its_qty() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, volume=7.7))
    broker.submit(make_order("odd", qty=5.2))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, volume=7.7))  # 0.77 of 5.2
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 100.0, volume=100.0))  # the other 4.43
    done = broker.order("odd")
    assert done is not None
    assert done.status is OrderStatus.FILLED
    # 0.77 + (5.2 - 0.77) is 5.199999999999999 in floats: the broker reports the order's qty itself.
    assert done.filled_qty == 5.2


def test_orders_of_one_symbol_share_a_bars_volume_in_submission_order() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, volume=100.0))
    broker.submit(make_order("first", qty=8.0))
    broker.submit(make_order("second", qty=8.0))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, volume=100.0))  # room 10: 8 + 2
    assert order_of(broker, "first").status is OrderStatus.FILLED
    assert order_of(broker, "second").filled_qty == pytest.approx(2.0)
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 100.0, volume=100.0))
    assert order_of(broker, "second").status is OrderStatus.FILLED
    assert broker.positions()[0].qty == pytest.approx(16.0)


@pytest.mark.parametrize(
    ("open_", "low", "price"),
    [
        (98.0, 94.0, 95.0),  # trades down through 95: filled at the limit, not 98 x 1.001
        (90.0, 89.0, 90.09),  # opens through it: 90 x 1.001, better than the limit
    ],
)
def test_a_buy_limit_fills_only_when_a_bar_trades_through_it(open_: float, low: float, price: float) -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    broker.submit(make_order("limit", qty=1.0, limit=95.0))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, 101.0, 95.0, 99.0))  # touches 95 only
    assert order_of(broker, "limit").status is OrderStatus.NEW
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, open_, open_, low, 96.0))
    filled = broker.order("limit")
    assert filled is not None
    assert filled.status is OrderStatus.FILLED
    assert filled.filled_avg_price == pytest.approx(price)


def test_a_sell_limit_fills_only_when_a_bar_trades_through_it() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    broker.submit(make_order("buy"))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0))
    broker.submit(make_order("take-profit", Side.SELL, qty=10.0, ts=T0 + 2 * MIN, limit=105.0))
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 103.0, 105.0, 102.0, 104.0))  # touches 105 only
    assert order_of(broker, "take-profit").status is OrderStatus.NEW
    step(broker, T0 + 3 * MIN, btc=bar(T0 + 3 * MIN, 104.0, 106.0, 103.0, 105.5))
    sold = broker.order("take-profit")
    assert sold is not None
    assert sold.status is OrderStatus.FILLED
    assert sold.filled_avg_price == pytest.approx(105.0)  # the limit, not 104 x 0.999
    assert broker.positions() == []


def test_cancel_ends_an_open_order_and_keeps_what_it_filled() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0, volume=100.0))
    broker.submit(make_order("limit", qty=1.0, limit=90.0))
    broker.submit(make_order("big", qty=15.0))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0, volume=100.0))  # big: 10 of 15
    broker.cancel("limit")
    broker.cancel("big")
    assert broker.open_orders() == []
    canceled = broker.order("big")
    assert canceled is not None
    assert canceled.status is OrderStatus.CANCELED
    assert canceled.filled_qty == pytest.approx(10.0)
    assert order_of(broker, "limit").status is OrderStatus.CANCELED

    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 85.0, 85.0, 80.0, 85.0, volume=100.0))
    assert order_of(broker, "limit").filled_qty == 0.0
    assert broker.positions()[0].qty == pytest.approx(10.0)
    account = broker.account()
    assert account.cash == pytest.approx(98_997.999)  # 100,000 - 1,001 - 1.001
    assert account.buying_power == pytest.approx(account.cash)  # nothing reserved any more

    broker.cancel("big")  # a final order keeps its state
    assert order_of(broker, "big").status is OrderStatus.CANCELED
    with pytest.raises(BrokerError):
        broker.cancel("unknown")


def test_an_equity_day_order_expires_at_the_session_close() -> None:
    broker = make_broker()
    t_1557 = datetime(2026, 3, 4, 20, 57, tzinfo=UTC)  # Wednesday 15:57 EST
    step(broker, t_1557, spy=bar(t_1557, 100.0, volume=500.0), btc=bar(t_1557, 100.0))
    broker.submit(make_order("spy", qty=200.0, symbol=SPY, ts=t_1557 + MIN))
    broker.submit(make_order("btc", qty=1.0, ts=t_1557 + MIN, limit=50.0))

    step(broker, t_1557 + MIN, spy=bar(t_1557 + MIN, 100.0, volume=500.0))  # 50 @ 100.1
    assert order_of(broker, "spy").status is OrderStatus.PARTIALLY_FILLED
    # The 15:59 bar, known at 16:00, still fills (50 @ 101.101); then the session is over.
    changed = step(broker, t_1557 + 2 * MIN, spy=bar(t_1557 + 2 * MIN, 101.0, volume=500.0))
    expired = broker.order("spy")
    assert expired is not None
    assert changed == [expired]
    assert expired.status is OrderStatus.EXPIRED
    assert expired.filled_qty == pytest.approx(100.0)
    assert expired.filled_avg_price == pytest.approx(100.6005)  # (100.1 + 101.101) / 2
    assert expired.updated_at == t_1557 + 3 * MIN

    thursday = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    step(broker, thursday, spy=bar(thursday, 99.0, volume=500.0), btc=bar(thursday, 100.0))
    assert order_of(broker, "spy").filled_qty == pytest.approx(100.0)
    assert [o.client_order_id for o in broker.open_orders()] == ["btc"]  # crypto is gtc


def test_a_day_order_placed_on_a_half_day_expires_at_its_early_close() -> None:
    broker = make_broker()
    t_1257 = datetime(2026, 11, 27, 17, 57, tzinfo=UTC)  # Friday after Thanksgiving, 12:57 EST
    step(broker, t_1257, spy=bar(t_1257, 100.0, volume=500.0))
    broker.submit(make_order("spy", qty=200.0, symbol=SPY, ts=t_1257 + MIN))
    step(broker, t_1257 + MIN, spy=bar(t_1257 + MIN, 100.0, volume=500.0))  # 50 @ 100.1
    # The 12:59 bar, known at 13:00, still fills; then the half day is over.
    changed = step(broker, t_1257 + 2 * MIN, spy=bar(t_1257 + 2 * MIN, 101.0, volume=500.0))
    expired = order_of(broker, "spy")
    assert changed == [expired]
    assert expired.status is OrderStatus.EXPIRED
    assert expired.filled_qty == pytest.approx(100.0)
    assert expired.updated_at == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def test_a_holiday_bar_never_fills_an_equity_order() -> None:
    """Recorded history may hold a print on a holiday; the broker trades only in sessions."""
    broker = make_broker()
    wednesday = datetime(2026, 11, 25, 20, 58, tzinfo=UTC)  # 15:58 EST, the day before Thanksgiving
    step(broker, wednesday, spy=bar(wednesday, 100.0))
    broker.submit(make_order("spy", qty=1.0, symbol=SPY, ts=wednesday + MIN))
    thanksgiving = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    step(broker, thanksgiving, spy=bar(thanksgiving, 100.0))
    assert order_of(broker, "spy").status is OrderStatus.EXPIRED
    assert order_of(broker, "spy").filled_qty == 0.0


def test_a_bar_outside_the_session_never_fills_a_day_order() -> None:
    broker = make_broker()
    t_1558 = datetime(2026, 3, 4, 20, 58, tzinfo=UTC)  # Wednesday 15:58 EST
    step(broker, t_1558, spy=bar(t_1558, 100.0))
    broker.submit(make_order("spy", qty=1.0, symbol=SPY, ts=t_1558 + MIN))
    post_market = t_1558 + 2 * MIN  # 16:00 EST, as recorded history may hold
    step(broker, post_market, spy=bar(post_market, 100.0))
    expired = broker.order("spy")
    assert expired is not None
    assert expired.status is OrderStatus.EXPIRED
    assert expired.filled_qty == 0.0
    assert broker.positions() == []


def test_the_calendar_can_be_replaced() -> None:
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    weekend = Sessions(
        "weekend",
        days=np.array([date(2026, 3, 7)], dtype="datetime64[D]"),
        opens=np.array([micros(saturday - timedelta(hours=1))]),
        closes=np.array([micros(saturday + timedelta(hours=1))]),
    )
    broker = SimBroker(100_000.0, slippage_bps=0.0, fee_bps=0.0, calendar=MarketCalendar(weekend))
    step(broker, saturday, spy=bar(saturday, 100.0))
    broker.submit(make_order("spy", qty=1.0, symbol=SPY, ts=saturday + MIN))
    step(broker, saturday + MIN, spy=bar(saturday + MIN, 101.0))
    assert order_of(broker, "spy").filled_avg_price == 101.0


def test_equity_is_cash_plus_positions_marked_at_the_last_close() -> None:
    broker = make_broker()
    step(broker, T0, btc=bar(T0, 100.0))
    broker.submit(make_order("buy"))
    step(broker, T0 + MIN, btc=bar(T0 + MIN, 100.0), eth=bar(T0 + MIN, 2_000.0))  # 10 @ 100.1
    step(broker, T0 + 2 * MIN, btc=bar(T0 + 2 * MIN, 110.0, 121.0, 109.0, 120.0))
    step(broker, T0 + 3 * MIN, eth=bar(T0 + 3 * MIN, 2_100.0))  # no BTC bar: its mark stays 120
    account = broker.account()
    assert account.cash == pytest.approx(98_997.999)
    assert account.equity == pytest.approx(98_997.999 + 10 * 120.0)
    assert broker.positions()[0].market_value == pytest.approx(1_200.0)


def _scenario() -> tuple[object, ...]:
    broker = make_broker()
    seen: list[BrokerOrder] = []
    t = datetime(2026, 3, 4, 20, 50, tzinfo=UTC)  # 15:50 EST
    for minute in range(20):
        ts = t + minute * MIN
        price = 100.0 + (minute * 7 % 5) - 2.0
        bars = {BTC: bar(ts, price, price + 1.5, price - 1.5, price + 0.5, 60.0)}
        if market_calendar().is_open(SPY, ts):
            bars[SPY] = bar(ts, 3 * price, 3 * price + 1.0, 3 * price - 1.0, 3 * price, 400.0)
        seen += broker.on_bar(bars, ts + MIN)
        now = ts + MIN
        if minute % 3 == 0:
            broker.submit(make_order(f"btc-{minute}", qty=7.5, ts=now))
        if minute % 4 == 1:
            broker.submit(make_order(f"lim-{minute}", qty=2.0, ts=now, limit=price - 1.0))
        if minute % 5 == 2 and market_calendar().is_open(SPY, now):
            broker.submit(make_order(f"spy-{minute}", qty=100.0, symbol=SPY, ts=now))
        if minute == 9:
            broker.cancel("lim-5")
    orders = [broker.order(f"{kind}-{m}") for kind in ("btc", "lim", "spy") for m in range(20)]
    return tuple(seen), tuple(broker.open_orders()), tuple(broker.positions()), broker.account(), tuple(orders)


def test_the_same_inputs_give_the_same_outputs() -> None:
    first = _scenario()
    assert first == _scenario()
    seen = first[0]
    assert isinstance(seen, tuple)
    statuses = {order.status for order in seen}
    assert {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.EXPIRED} <= statuses
