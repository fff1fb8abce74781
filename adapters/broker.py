"""The broker contract: Alpaca paper and the simulated broker meet it alike.

The trading flow talks only to this Protocol, so the same flow trades in every world.
Orders carry deterministic client order ids, so `submit` is idempotent: submitting an id
the broker already has returns that order instead of placing another. Fills are derived the
same way for every broker, from the increase of an order's filled quantity since what was
last recorded (`new_fill`): the fill id is the client order id and the cumulative quantity,
so reading an order twice never books a fill twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from core.types import Fill, Order, Side


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    REFUSED = "refused"  # refused by HYDRA before sending: it broke a broker rule

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.REFUSED}
)


class BrokerError(Exception):
    """The broker could not be reached or answered with an error; nothing is known to have happened."""


class BrokerUnauthorized(BrokerError):
    """The broker refused the credentials: nothing will work until they are fixed, so retrying is pointless."""


class RefusalKind(StrEnum):
    """Whether proposing the same order again can succeed within the same view."""

    PERMANENT = "permanent"  # a property of the account, the asset or the order itself: it will not change
    TRANSIENT = "transient"  # the market's or the account's state: the same order may pass later


class RefusalCode(StrEnum):
    """Why a broker refused an order: stable names, the same for Alpaca and the simulated broker."""

    SHORTING_DISABLED = "shorting_disabled"  # the account may not sell short
    NOT_SHORTABLE = "not_shortable"  # the asset cannot be borrowed
    FRACTIONAL_SHORT = "fractional_short"  # Alpaca: fractional orders cannot be sold short
    NOT_TRADABLE = "not_tradable"  # the asset is not tradable at this broker
    NOT_FRACTIONABLE = "not_fractionable"  # a fractional quantity of an asset that trades in whole units
    CRYPTO_SHORT = "crypto_short"  # crypto cannot be sold short
    CRYPTO_TIME_IN_FORCE = "crypto_time_in_force"  # crypto takes only gtc or ioc
    INVALID_ORDER = "invalid_order"  # the order itself breaks a rule (quantity, price, type)
    CLIENT_ORDER_ID_REUSED = "client_order_id_reused"  # the id belongs to another order
    WASH_TRADE = "wash_trade"  # an opposite-side order for the symbol is still open
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    INSUFFICIENT_QTY = "insufficient_qty"  # the order would take the position past flat, or open orders hold it
    MARKET_CLOSED = "market_closed"
    BROKER_REFUSED = "broker_refused"  # any other refusal the broker gave, its text kept in the reason

    @property
    def kind(self) -> RefusalKind:
        return RefusalKind.PERMANENT if self in PERMANENT_REFUSALS else RefusalKind.TRANSIENT


PERMANENT_REFUSALS = frozenset(
    {
        RefusalCode.SHORTING_DISABLED,
        RefusalCode.NOT_SHORTABLE,
        RefusalCode.FRACTIONAL_SHORT,
        RefusalCode.NOT_TRADABLE,
        RefusalCode.NOT_FRACTIONABLE,
        RefusalCode.CRYPTO_SHORT,
        RefusalCode.CRYPTO_TIME_IN_FORCE,
        RefusalCode.INVALID_ORDER,
        RefusalCode.CLIENT_ORDER_ID_REUSED,
    }
)


class OrderRefused(BrokerError):
    """The broker refused the order, or HYDRA did before sending it by the broker's rules: it was not placed.

    `code` names the rule; `kind` says whether the same order can pass later in the same view
    (TRANSIENT) or not (PERMANENT: proposing it again only repeats the refusal).
    """

    def __init__(self, client_order_id: str, reason: str, code: RefusalCode) -> None:
        super().__init__(f"order {client_order_id} refused ({code}): {reason}")
        self.client_order_id = client_order_id
        self.reason = reason
        self.code = code
        self.kind = code.kind


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    client_order_id: str
    broker_order_id: str | None
    symbol: str  # order form: 'BTC/USD', 'SPY'
    side: Side
    qty: float
    order_type: str
    time_in_force: str
    status: OrderStatus
    filled_qty: float
    filled_avg_price: float | None
    submitted_at: datetime | None
    updated_at: datetime | None
    status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    symbol: str  # order form, whatever the broker calls it ('BTCUSD' at Alpaca becomes 'BTC/USD')
    qty: float  # signed: negative is short
    avg_entry_price: float
    market_value: float


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill at the broker, of any order: HYDRA's or one placed by hand."""

    execution_id: str
    broker_order_id: str
    symbol: str  # order form, as BrokerPosition's
    side: Side
    qty: float
    price: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class Account:
    cash: float
    equity: float
    buying_power: float
    shorting_enabled: bool  # the account may open short positions


@dataclass(frozen=True, slots=True)
class MarketClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


class Broker(Protocol):
    def account(self) -> Account: ...

    def positions(self) -> list[BrokerPosition]: ...

    def open_orders(self) -> list[BrokerOrder]: ...

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        """Every order submitted after `since`, whatever its state."""
        ...

    def executions(self, since: datetime) -> list[Execution]:
        """Every fill after `since`, oldest first, whoever placed the order (Alpaca's FILL activities)."""
        ...

    def clock(self) -> MarketClock: ...

    def submit(self, order: Order) -> BrokerOrder:
        """Place the order, or return the broker's order of that client id if it already has one.

        Raises OrderRefused (not sent) or BrokerError (outcome unknown: look it up by id later).
        """
        ...

    def order(self, client_order_id: str) -> BrokerOrder | None: ...

    def cancel(self, client_order_id: str) -> None: ...

    def fee(self, symbol: str, notional: float) -> float:
        """What the broker charges on a fill of this notional."""
        ...


def new_fill(
    order: BrokerOrder,
    recorded_qty: float,
    recorded_avg_price: float | None,
    fee: Callable[[str, float], float],
    ts: datetime,
) -> Fill | None:
    """The fill behind the part of `order` filled since `recorded_qty` (at `recorded_avg_price`).

    Brokers report a cumulative quantity and average price; the increment's price follows
    from the two averages. Its fee is `fee(symbol, notional)` (the broker's) of the increment's
    own notional, so the fees of an order's fills add up to what the broker charged for its
    parts. None when nothing new was filled.
    """
    increment = order.filled_qty - recorded_qty
    if increment <= 1e-12 or order.filled_avg_price is None:
        return None
    previous_cost = recorded_qty * (recorded_avg_price or 0.0)
    price = (order.filled_qty * order.filled_avg_price - previous_cost) / increment
    return Fill(
        fill_id=f"{order.client_order_id}:{order.filled_qty:.10g}",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=increment,
        price=price,
        fee=fee(order.symbol, increment * price),
        ts_event=ts,
    )
