"""The simulated broker: the Broker contract for `sim` and `backtest`, moved only by bars.

API
    broker = SimBroker(starting_cash=100_000.0, slippage_bps=2.0, fee_bps=1.0,
                       max_volume_share=0.1, calendar=market_calendar())
    broker.on_bar({"SPY": Bar(ts, open, high, low, close, volume), ...}, now) -> list[BrokerOrder]
        the orders this step filled, partially filled or expired
    broker.account() / positions() / open_orders() / recent_orders(since) / executions(since) / clock()
    broker.submit(order) / order(id) / cancel(id) / fee(...)
        the Broker Protocol of adapters.broker

Market hours are the calendar's (core.calendar, the NYSE's by default): crypto always, US
equities and ETFs in NYSE sessions, so never on an exchange holiday and only until 13:00 New
York on a half day.

Deterministic: no wall clock, no randomness. The same calls give the same orders, fills
and account, so a backtest replays exactly.

Time
    The broker's time is the `now` of the latest on_bar: the moment its bars are known
    (their close; in sim, a minute bar's ts_ingested). A bar's `ts` is its start, and its
    symbol is the order form ('BTC/USD', 'SPY'). `now` never goes back. Before the first
    bar the broker has no time: clock() raises BrokerError and submit checks market hours
    at the order's ts_event.

Latency and fill prices
    An order fills only at bars delivered by an on_bar after its submission, and only at a
    bar that started no earlier than the broker's time at submission and the order's
    ts_event: a decision never fills at the bar it was made from, nor at a price printed
    before it was made.
    Market orders fill at the bar's open moved against the order by slippage_bps: buys pay
    open x (1 + s), sells receive open x (1 - s).
    Limit orders fill only when the bar trades through the limit (buy: low < limit; sell:
    high > limit). Merely touching it is not enough: the queue ahead of a simulated order
    is unknown. They fill at the open with slippage when the bar opens through the limit,
    else at the limit, never worse than the limit.
    Per symbol and bar, all orders together fill at most max_volume_share x the bar's
    volume, in submission order; the rest stays open as PARTIALLY_FILLED and fills on the
    next bars. A bar whose volume is unknown (None: its source has none, such as index
    levels) puts no cap on fills. filled_qty and filled_avg_price are cumulative, as at Alpaca, so
    adapters.broker.new_fill derives each fill the same way for both brokers.
    A symbol trades only on bars inside the calendar's hours (calendar.is_open(symbol, bar
    ts)): an equity order placed in the session never fills on a pre- or post-market bar of
    recorded history.
    Each fill costs fee_bps of its notional, charged to cash through core.book.Book.

Time in force and final states
    Crypto orders are 'gtc' (Alpaca accepts nothing longer) and stay open until filled or
    canceled. Equity orders are 'day': one still open at the close of the session it was
    placed in (16:00 New York, 13:00 on a half day) ends EXPIRED, keeping what it filled. The
    check runs after that step's fills, so the bar of 15:59, delivered at 16:00, still fills.
    cancel() takes effect at once: the order ends CANCELED, keeping what it filled.

Refusals and rejections, as at Alpaca so sim and paper behave alike
    Refused (OrderRefused with the same RefusalCode the Alpaca adapter gives, nothing
    recorded, the id stays free):
    - a stop_limit order, whose stop price Order does not carry (invalid_order);
    - a symbol outside its hours at the broker's time (equities outside a session: at
      night, on a weekend or an exchange holiday, after a half day's early close)
      (market_closed);
    - an order while an opposite-side order for the symbol is open and could cross it
      (either is a market order, or the buy's limit is at or above the sell's): Alpaca's
      "potential wash trade detected" (wash_trade);
    - a sell of more than a long position's quantity less what open sells already claim,
      or a buy of more than a short's less what open buys claim: one order never turns a
      position into its opposite (insufficient_qty); for crypto, any sell beyond what is
      held (crypto_short: crypto is never shorted);
    - an equity sell that opens or adds to a short with a fractional quantity
      (fractional_short), or of a symbol in `unshortable`, the simulator's assets whose
      Alpaca flag shortable is false (not_shortable).
    A positive qty is Order's own contract and never reaches the broker otherwise.
    Rejected (recorded REJECTED, reason 'insufficient buying power'): a buy whose notional
    plus fee, at its limit price or else the last close (else its decision price), exceeds
    the buying power: cash less what open buys reserve at the same prices. No margin.
    Sells are not checked against buying power: equity shorts are allowed as on an Alpaca
    paper (margin) account, and the risk manager bounds them.

Valuation: positions are marked at their symbol's last close; equity = cash + marked
positions.

Performance: a step costs one dict update plus work for each open order; prices are
marked on the book only when account() or positions() read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from adapters.broker import (
    Account,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    Execution,
    MarketClock,
    OrderRefused,
    OrderStatus,
    RefusalCode,
)
from core.book import Book, Holding
from core.calendar import MarketCalendar, market_calendar
from core.config import is_crypto
from core.types import Fill, Order, Side

BPS = 1e-4
INSUFFICIENT_BUYING_POWER = "insufficient buying power"
INSUFFICIENT_QTY = "insufficient qty available"
# Quantities are floats: a fill meant to complete an order, or a sell of the whole
# position, may differ from the recorded quantity by a few ulps and must still count.
QTY_TOLERANCE = 1e-9

BarTuple = tuple[datetime, float, float, float, float, float | None]


class Bar(NamedTuple):
    """One bar of one symbol; any tuple in this order is accepted too."""

    ts: datetime  # the bar's start
    open: float
    high: float
    low: float
    close: float
    volume: float | None  # None: unknown, no cap on fills


@dataclass(slots=True)
class _SimOrder:
    order: Order
    broker_order_id: str
    time_in_force: str
    status: OrderStatus
    submitted_at: datetime
    updated_at: datetime
    eligible_from: datetime
    expires_at: datetime | None
    limit_price: float | None  # only for limit orders: a market order's stray limit_price is ignored
    status_reason: str | None = None
    filled_qty: float = 0.0
    filled_avg_price: float | None = None

    def snapshot(self) -> BrokerOrder:
        order = self.order
        return BrokerOrder(
            client_order_id=order.client_order_id,
            broker_order_id=self.broker_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            order_type=order.order_type,
            time_in_force=self.time_in_force,
            status=self.status,
            filled_qty=self.filled_qty,
            filled_avg_price=self.filled_avg_price,
            submitted_at=self.submitted_at,
            updated_at=self.updated_at,
            status_reason=self.status_reason,
        )


@dataclass(frozen=True)
class SimBrokerState:
    """Everything a SimBroker holds, as plain data: a trading flow run in a fresh process
    (one per minute) picks up the account where the last run left it."""

    cash: float
    realized_pnl: float
    fees: float
    holdings: Mapping[str, Holding]
    now: datetime | None
    last_bars: Mapping[str, tuple[datetime, float, float, float, float, float]]
    orders: tuple[_SimOrder, ...]  # in submission order, the order open ones take a bar's volume
    executions: tuple[Execution, ...] = ()  # every fill, oldest first (absent from accounts saved before)


class SimBroker:
    """A cash account filled from bars; see the module docstring for its conventions."""

    def __init__(
        self,
        starting_cash: float,
        slippage_bps: float,
        fee_bps: float,
        max_volume_share: float = 0.1,
        calendar: MarketCalendar | None = None,
        unshortable: Iterable[str] = (),
    ) -> None:
        if not (math.isfinite(starting_cash) and starting_cash > 0):
            raise ValueError(f"starting_cash must be positive, got {starting_cash}")
        if not (0 <= slippage_bps < 10_000 and 0 <= fee_bps < 10_000):
            raise ValueError(f"slippage_bps and fee_bps must be in [0, 10000), got {slippage_bps}, {fee_bps}")
        if not 0 < max_volume_share <= 1:
            raise ValueError(f"max_volume_share must be in (0, 1], got {max_volume_share}")
        self._book = Book(starting_cash)
        self._slippage = slippage_bps * BPS
        self._fee_rate = fee_bps * BPS
        self._max_volume_share = max_volume_share
        self._calendar = calendar if calendar is not None else market_calendar()
        self._unshortable = frozenset(unshortable)
        self._now: datetime | None = None
        self._last_bars: dict[str, BarTuple] = {}
        self._orders: dict[str, _SimOrder] = {}
        # Open orders in submission order, the order in which they take a bar's volume.
        self._open: dict[str, _SimOrder] = {}
        self._executions: list[Execution] = []

    def export_state(self) -> SimBrokerState:
        book = self._book
        return SimBrokerState(
            cash=book.cash,
            realized_pnl=book.realized_pnl,
            fees=book.fees,
            holdings=book.holdings(),
            now=self._now,
            last_bars={symbol: tuple(bar) for symbol, bar in self._last_bars.items()},  # type: ignore[misc]
            orders=tuple(self._orders.values()),
            executions=tuple(self._executions),
        )

    def restore(self, state: SimBrokerState) -> None:
        """Take over an exported account (this broker's costs and calendar stay as constructed)."""
        self._book = Book(state.cash, state.holdings, {symbol: bar[4] for symbol, bar in state.last_bars.items()})
        self._book.realized_pnl = state.realized_pnl
        self._book.fees = state.fees
        self._now = state.now
        self._last_bars = {symbol: Bar(*bar) for symbol, bar in state.last_bars.items()}
        self._orders = {sim.order.client_order_id: sim for sim in state.orders}
        self._open = {cid: sim for cid, sim in self._orders.items() if not sim.status.is_final}
        self._executions = list(state.executions)

    @property
    def now(self) -> datetime | None:
        """The broker's time: that of the latest on_bar, None before the first."""
        return self._now

    # --- time ---------------------------------------------------------------------------

    def on_bar(self, bars: Mapping[str, BarTuple], now: datetime) -> list[BrokerOrder]:
        """Move the broker to `now`, when `bars` are known: fill, then expire, open orders."""
        if now.tzinfo is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        if self._now is not None and now < self._now:
            raise ValueError(f"time moves forward only: {now.isoformat()} is before {self._now.isoformat()}")
        self._now = now
        self._last_bars.update(bars)
        if not self._open:
            return []
        changed: list[BrokerOrder] = []
        taken: dict[str, float] = {}
        for sim in list(self._open.values()):
            bar = bars.get(sim.order.symbol)
            touched = bar is not None and self._fill(sim, bar, taken)
            if sim.expires_at is not None and now >= sim.expires_at and not sim.status.is_final:
                sim.status = OrderStatus.EXPIRED
                sim.updated_at = now
                touched = True
            if touched:
                changed.append(sim.snapshot())
            if sim.status.is_final:
                del self._open[sim.order.client_order_id]
        return changed

    def _fill(self, sim: _SimOrder, bar: BarTuple, taken: dict[str, float]) -> bool:
        ts, open_, high, low, _close, volume = bar
        order = sim.order
        symbol = order.symbol
        if ts < sim.eligible_from:
            return False
        limit = sim.limit_price
        if order.side is Side.BUY:
            price = open_ * (1.0 + self._slippage)
            if limit is not None:
                if not low < limit:
                    return False
                price = min(price, limit)
        else:
            price = open_ * (1.0 - self._slippage)
            if limit is not None:
                if not high > limit:
                    return False
                price = max(price, limit)
        already = taken.get(symbol, 0.0)
        room = math.inf if volume is None else self._max_volume_share * volume - already
        # Market hours last: the calendar's lookup costs more than the price checks that keep a
        # resting limit order waiting bar after bar.
        if room <= 0.0 or not self._calendar.is_open(symbol, ts):
            return False
        remaining = order.qty - sim.filled_qty
        if room >= remaining - QTY_TOLERANCE * order.qty:
            qty = remaining
            filled = order.qty  # exactly, so a complete order reports its full qty
            sim.status = OrderStatus.FILLED
        else:
            qty = room
            filled = sim.filled_qty + qty
            sim.status = OrderStatus.PARTIALLY_FILLED
        taken[symbol] = already + qty
        sim.filled_avg_price = (sim.filled_qty * (sim.filled_avg_price or 0.0) + qty * price) / filled
        sim.filled_qty = filled
        sim.updated_at = ts
        fill = Fill(
            fill_id=f"{order.client_order_id}:{filled:.10g}",
            client_order_id=order.client_order_id,
            symbol=symbol,
            side=order.side,
            qty=qty,
            price=price,
            fee=self.fee(symbol, qty * price),
            ts_event=ts.astimezone(UTC),
        )
        self._book.apply_fill(fill)
        self._executions.append(
            Execution(fill.fill_id, sim.broker_order_id, symbol, order.side, qty, price, fill.ts_event)
        )
        return True

    def clock(self) -> MarketClock:
        if self._now is None:
            raise BrokerError("the simulated broker has no time before its first bar")
        now = self._now
        sessions = self._calendar.equities
        return MarketClock(
            timestamp=now,
            is_open=sessions.is_open(now),
            next_open=sessions.next_open(now),
            next_close=sessions.next_close(now),
        )

    # --- orders -------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        coid = order.client_order_id
        existing = self._orders.get(coid)
        if existing is not None:
            return existing.snapshot()
        if order.order_type == "stop_limit":
            raise OrderRefused(
                coid, "stop_limit needs a stop price, which Order does not carry", RefusalCode.INVALID_ORDER
            )
        symbol = order.symbol
        at = self._now if self._now is not None else order.ts_event
        if not self._calendar.is_open(symbol, at):
            raise OrderRefused(coid, f"market is closed for {symbol} at {at.isoformat()}", RefusalCode.MARKET_CLOSED)
        crypto = is_crypto(symbol)
        refusal = self._refusal(order, crypto)
        if refusal is not None:
            raise OrderRefused(coid, refusal[1], refusal[0])

        limit = order.limit_price if order.order_type == "limit" else None
        status, reason = OrderStatus.NEW, None
        if order.side is Side.BUY:
            notional = order.qty * self._reference_price(symbol, limit, order.decision_price)
            if notional + self.fee(symbol, notional) > self._cash_free():
                status, reason = OrderStatus.REJECTED, INSUFFICIENT_BUYING_POWER
        sim = _SimOrder(
            order=order,
            broker_order_id=f"sim-{len(self._orders) + 1}",
            time_in_force="gtc" if crypto else "day",
            status=status,
            submitted_at=at,
            updated_at=at,
            eligible_from=max(at, order.ts_event),
            # Placed in a session (a closed market refuses it above): it expires at that session's close.
            expires_at=None if crypto else self._calendar.equities.next_close(at),
            limit_price=limit,
            status_reason=reason,
        )
        self._orders[coid] = sim
        if status is OrderStatus.NEW:
            self._open[coid] = sim
        return sim.snapshot()

    def _refusal(self, order: Order, crypto: bool) -> tuple[RefusalCode, str] | None:
        """Alpaca's wash-trade, position and short-sale rules (see the module docstring)."""
        symbol = order.symbol
        crossing = next((sim for sim in self._open.values() if _could_cross(sim, order)), None)
        if crossing is not None:
            return (
                RefusalCode.WASH_TRADE,
                f"potential wash trade detected: {crossing.order.side} order {crossing.order.client_order_id}"
                f" for {symbol} is open",
            )
        # What the order reduces: a long for a sell, a short for a buy.
        reduced = -order.side.sign * self._book.qty(symbol)
        available = reduced - self._open_qty(symbol, order.side)
        tolerance = QTY_TOLERANCE * order.qty
        if reduced > tolerance or (crypto and order.side is Side.SELL):
            if order.qty <= available + tolerance:
                return None
            # One order never turns a position into its opposite; crypto is never shorted at all.
            code = (
                RefusalCode.CRYPTO_SHORT if crypto and order.qty > reduced + tolerance else RefusalCode.INSUFFICIENT_QTY
            )
            return code, f"{INSUFFICIENT_QTY}: {order.qty:g} {symbol} to {order.side}, {available:g} free"
        if order.side is Side.BUY:
            return None
        if abs(order.qty - round(order.qty)) > tolerance:
            return RefusalCode.FRACTIONAL_SHORT, f"fractional orders cannot be sold short: {order.qty:g} {symbol}"
        if symbol in self._unshortable:
            return RefusalCode.NOT_SHORTABLE, f"asset {symbol} cannot be sold short"
        return None

    def order(self, client_order_id: str) -> BrokerOrder | None:
        sim = self._orders.get(client_order_id)
        return None if sim is None else sim.snapshot()

    def open_orders(self) -> list[BrokerOrder]:
        return [sim.snapshot() for sim in self._open.values()]

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        return [sim.snapshot() for sim in self._orders.values() if sim.submitted_at > since]

    def executions(self, since: datetime) -> list[Execution]:
        return [execution for execution in self._executions if execution.ts > since]

    def cancel(self, client_order_id: str) -> None:
        """Cancel an open order; a final one keeps its state, an unknown id is a BrokerError."""
        sim = self._orders.get(client_order_id)
        if sim is None:
            raise BrokerError(f"no order with client_order_id {client_order_id}")
        if sim.status.is_final:
            return
        sim.status = OrderStatus.CANCELED
        if self._now is not None:
            sim.updated_at = self._now
        del self._open[client_order_id]

    def fee(self, symbol: str, notional: float) -> float:
        return abs(notional) * self._fee_rate

    # --- account ------------------------------------------------------------------------

    def account(self) -> Account:
        self._mark_holdings()
        book = self._book
        # Equity shorts are allowed, as on an Alpaca paper (margin) account.
        return Account(
            cash=book.cash, equity=book.equity, buying_power=max(0.0, self._cash_free()), shorting_enabled=True
        )

    def positions(self) -> list[BrokerPosition]:
        # Every holding came from a fill at one of its symbol's bars, so it has a last close.
        last_bars = self._last_bars
        return [
            BrokerPosition(
                symbol=symbol,
                qty=holding.qty,
                avg_entry_price=holding.avg_price,
                market_value=holding.qty * last_bars[symbol][4],
            )
            for symbol, holding in self._book.holdings().items()
        ]

    def _mark_holdings(self) -> None:
        last_bars = self._last_bars
        for symbol in self._book.holdings():
            self._book.mark(symbol, last_bars[symbol][4])

    def _reference_price(self, symbol: str, limit: float | None, decision_price: float) -> float:
        """What a buy is expected to cost a unit: its limit, else the last close, else the decided price."""
        if limit is not None:
            return limit
        bar = self._last_bars.get(symbol)
        return decision_price if bar is None else bar[4]

    def _open_qty(self, symbol: str, side: Side) -> float:
        return sum(
            sim.order.qty - sim.filled_qty
            for sim in self._open.values()
            if sim.order.symbol == symbol and sim.order.side is side
        )

    def _cash_free(self) -> float:
        """Cash not yet claimed by open buys: what a cash account may still spend."""
        reserved = 0.0
        for sim in self._open.values():
            if sim.order.side is Side.BUY:
                price = self._reference_price(sim.order.symbol, sim.limit_price, sim.order.decision_price)
                notional = (sim.order.qty - sim.filled_qty) * price
                reserved += notional + self.fee(sim.order.symbol, notional)
        return self._book.cash - reserved


def _could_cross(sim: _SimOrder, order: Order) -> bool:
    """Whether the open `sim` order, on the other side of `order` for its symbol, could trade with it."""
    if sim.order.symbol != order.symbol or sim.order.side is order.side:
        return False
    limits = {sim.order.side: sim.limit_price, order.side: order.limit_price if order.order_type == "limit" else None}
    buy, sell = limits[Side.BUY], limits[Side.SELL]
    return buy is None or sell is None or buy >= sell
