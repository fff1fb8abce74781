"""Alpaca paper trading behind the Broker protocol, through alpaca-py's TradingClient.

Rules checked before sending (a breach raises OrderRefused and nothing is sent):

- every order: qty only, never notional (HYDRA sizes in units, so "exactly one of qty or
  notional" holds by construction), at most 9 decimals (Alpaca's precision; a float such
  as 0.1 + 0.2 is rounded, not sent as 0.30000000000000004), and simple order class:
  HYDRA's Order carries no legs, so no bracket can reach crypto;
- limit orders need a positive finite limit price; an equity's is moved onto Alpaca's tick
  (a cent from $1 up, 0.0001 below: Alpaca refuses sub-penny prices), down for a buy and up
  for a sell, so the order never pays more or receives less than HYDRA asked; stop_limit
  needs a stop price, which HYDRA's Order does not carry, so it is refused rather than sent
  incomplete;
- equities: time_in_force day, only while the market is open per `clock()`; a fractional
  quantity only on a market order;
- crypto ('BTC/USD'): time_in_force gtc (Alpaca takes only gtc or ioc) and no short: a sell
  of more than the position's available quantity is refused (crypto_short, or
  insufficient_qty when open orders hold what is missing);
- equities, from the asset's flags (GET /v2/assets/{symbol}) and the account's
  shorting_enabled (GET /v2/account), both read once per trading session (until the
  clock's next close): an asset Alpaca does not list or marks not tradable (not_tradable);
  a fractional quantity of an asset that is not fractionable (not_fractionable); a sell of
  more than a long's available quantity (insufficient_qty: one order never turns a long
  into a short); and a sell from flat or short, which opens or adds to a short, when the
  account may not short (shorting_disabled), with a fractional quantity
  (fractional_short) or of an asset that is not shortable (not_shortable). A short of an
  asset that is not easy to borrow must be a day order, which HYDRA's equity orders are.

Every refusal carries a RefusalCode, and through it whether it is permanent (adapters.broker).

The market's state, the position and the flags change between a first submission and its
retry: an order placed a second before the close, or a sell that emptied the position, would
be refused when retried. So a refusal that depends on them is only raised once a look-up by
client order id has found no order of that id; if there is one, it is returned, as the
contract's idempotent submit requires. An order found under the id must be this order (same
symbol, side and quantity): an id already used by another order is refused, not adopted.

After sending: HTTP 422 code 40010001 is Alpaca's "client_order_id must be unique" (also
for the id of a cancelled order) but it is the code of other invalid requests too, so the
order is looked up by client id: found, it is returned; not found, the order is refused
with Alpaca's message (invalid_order). HTTP 403 code 40310000 and 422 code 42210000 are
refusals, their code read from Alpaca's text (ALPACA_REFUSALS: "insufficient buying power",
"potential wash trade detected", "fractional orders cannot be sold short", ...). HTTP 401 is
BrokerUnauthorized, a one-line error naming the variables to check. Any other failure is a
BrokerError: the order may have reached Alpaca (a timeout after it was accepted), so the
caller looks it up by id.

Retries are HYDRA's (alpaca-py's own, HTTP 429 and 504 with a fixed wait, are turned off,
and its missing request timeout is set from the constructor). Reads are retried up to
max_retries times on HTTP 429, 500, 502, 503 and 504, timeouts and connection errors,
retry_wait_s apart; a 429 waits what Alpaca asks instead (Retry-After, else
X-Ratelimit-Reset), and is not retried when that is longer than max_wait_s. A submit or a
cancel is retried only on 429 and 504, as alpaca-py did: a 504 can hide an order Alpaca did
place, and its retry then meets the duplicate id, which the look-up above resolves.

Alpaca order status -> OrderStatus, conservatively: an order counts as final only when
Alpaca says it is. Every state in which it can still fill becomes ACCEPTED, or
PARTIALLY_FILLED once something has filled, with Alpaca's status kept in `status_reason`.

    new                                   NEW
    accepted, pending_new                 ACCEPTED
    partially_filled                      PARTIALLY_FILLED
    filled                                FILLED
    canceled                              CANCELED
    expired                               EXPIRED
    rejected                              REJECTED
    replaced                              CANCELED (this id will not fill again; HYDRA
                                          never replaces, Alpaca may after a corporate
                                          action: positions reconcile the rest)
    done_for_day, pending_cancel,
    pending_replace, pending_review,
    accepted_for_bidding, stopped,
    suspended, calculated, held, unknown  ACCEPTED / PARTIALLY_FILLED (still working)

Fees: equities are commission-free at Alpaca (the regulatory SEC and FINRA TAF fees on sells
are small and not modelled). Crypto pays a volume-tiered fee on the
notional; the default is tier 1's taker rate, 25 bps, because market orders take liquidity
and a limit order may too: an estimate that errs high.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest, OrderRequest
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from adapters.alpaca_sdk import TimedSession, bound_client
from adapters.broker import (
    Account,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    BrokerUnauthorized,
    Execution,
    MarketClock,
    OrderRefused,
    OrderStatus,
    RefusalCode,
)
from adapters.http import rate_limit_wait_seconds
from core.config import DEFAULT_WATCHLIST, is_crypto
from core.types import Order, Side

logger = logging.getLogger(__name__)

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_HOST = "api.alpaca.markets"
DUPLICATE_CLIENT_ORDER_ID = 40010001
# Alpaca's codes of a refused order (403) and of an unprocessable one (422): neither was placed.
FORBIDDEN_ORDER = 40310000
UNPROCESSABLE_ORDER = 42210000
# Alpaca's refusal texts, read into HYDRA's codes; the first match wins, so the fractional
# short comes before the asset that "cannot be sold short".
ALPACA_REFUSALS = (
    ("insufficient buying power", RefusalCode.INSUFFICIENT_BUYING_POWER),
    ("insufficient qty", RefusalCode.INSUFFICIENT_QTY),
    ("not allowed to short", RefusalCode.SHORTING_DISABLED),
    ("fractional orders cannot be sold short", RefusalCode.FRACTIONAL_SHORT),
    ("cannot be sold short", RefusalCode.NOT_SHORTABLE),
    ("not fractionable", RefusalCode.NOT_FRACTIONABLE),
    ("not tradable", RefusalCode.NOT_TRADABLE),
    ("wash trade", RefusalCode.WASH_TRADE),
    ("crypto time_in_force", RefusalCode.CRYPTO_TIME_IN_FORCE),
)
# Worth asking again: Alpaca was busy, failing or out of reach, and a read changes nothing.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
# What alpaca-py retried on every request before HYDRA took its retries over, and what a
# submit or a cancel still retries: a 429 was not processed, and the order a 504 may hide
# is found under its client id. A 500 is not retried: the next cycle looks the order up.
WRITE_RETRY_STATUS = frozenset({429, 504})
CHECK_KEYS = "Alpaca refused the keys: check ALPACA_API_KEY and ALPACA_SECRET_KEY"
DEFAULT_CRYPTO_FEE_BPS = 25.0
QTY_DECIMALS = 9
QTY_TOLERANCE = 0.5 * 10**-QTY_DECIMALS
# Alpaca's largest page of orders; the trade limits keep HYDRA far below it.
OPEN_ORDERS_LIMIT = 500
# Alpaca's largest page of account activities.
ACTIVITIES_PAGE = 100
# Longest first, so 'BTCUSDT' splits as BTC/USDT and not BTCUSD/T... or BTCUS/DT.
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")
MAX_MESSAGE_CHARS = 300
# Alpaca refuses sub-penny equity prices: cents from $1 up, hundredths of a cent below.
EQUITY_TICK = Decimal("0.01")
EQUITY_SUBDOLLAR_TICK = Decimal("0.0001")
WATCHED_CRYPTO = tuple(symbol for symbol in DEFAULT_WATCHLIST if is_crypto(symbol))

WORKING = frozenset({OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
STATUSES: dict[str, OrderStatus] = {
    "new": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "pending_new": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "replaced": OrderStatus.CANCELED,
}

T = TypeVar("T")


class AlpacaApiError(BrokerError):
    """Alpaca answered with an HTTP error: its status and Alpaca's error code, when the body had one."""

    def __init__(
        self,
        message: str,
        status_code: int | None,
        code: int | None,
        alpaca_message: str,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.alpaca_message = alpaca_message
        self.retry_after_s = retry_after_s  # what a 429 asked to wait, when it said


class AlpacaUnreachable(BrokerError):
    """The request timed out or could not connect: Alpaca may answer the next one."""


@dataclass(frozen=True, slots=True)
class AssetFlags:
    """What Alpaca allows on an asset (GET /v2/assets/{symbol}); read once per trading session."""

    tradable: bool
    shortable: bool
    easy_to_borrow: bool  # false: a short must be a day order, which every HYDRA equity order is
    fractionable: bool


class _Malformed(Exception):
    """An answer not in Alpaca's format; AlpacaBroker._read turns it into a BrokerError without keys."""


class AlpacaBroker:
    """The Broker protocol over Alpaca paper trading.

    Each request to Alpaca takes at most about (max_retries + 1) x timeout_s + max_retries x
    max(retry_wait_s, max_wait_s); `submit` makes up to six (the clock, the asset and the
    account once a session, the positions, the order, a look-up by client id).
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        base_url: str = PAPER_URL,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        retry_wait_s: float = 3.0,
        max_wait_s: float = 30.0,
        crypto_fee_bps: float = DEFAULT_CRYPTO_FEE_BPS,
        crypto_symbols: Iterable[str] = WATCHED_CRYPTO,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key or not secret_key:
            raise ValueError("Alpaca paper trading needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
        self.base_url = base_url.rstrip("/")
        if urlsplit(self.base_url).hostname == LIVE_HOST:
            raise ValueError(f"HYDRA trades on Alpaca paper only: use {PAPER_URL}, not the live {self.base_url}")
        if timeout_s <= 0 or min(max_retries, retry_wait_s, max_wait_s, crypto_fee_bps) < 0:
            raise ValueError("timeout_s must be > 0; max_retries, retry_wait_s, max_wait_s and crypto_fee_bps >= 0")
        self.crypto_fee_bps = crypto_fee_bps
        self._max_retries = max_retries
        self._retry_wait_s = retry_wait_s
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self._secrets = (api_key, secret_key)
        # Positions name crypto without the slash; this maps a position whose asset class is
        # missing back to the order form when it is a known pair.
        self._known_crypto = {symbol.replace("/", ""): symbol for symbol in crypto_symbols}
        self._client = TradingClient(api_key, secret_key, paper=True, raw_data=True, url_override=self.base_url)
        # HYDRA retries itself (_call): the SDK's own retries would multiply its tries and ignore Retry-After.
        bound_client(self._client, TimedSession(timeout_s), 0, 0.0)
        # The account's shorting flag and the assets' flags, read once per trading session
        # (keyed by the session's close) rather than before every order.
        self._session: datetime | None = None
        self._assets: dict[str, AssetFlags | None] = {}
        self._shorting_enabled: bool | None = None

    def __repr__(self) -> str:
        return f"AlpacaBroker(base_url={self.base_url!r})"

    def account(self) -> Account:
        return self._read("account", self._client.get_account, _account)

    def positions(self) -> list[BrokerPosition]:
        return [position for position, _ in self._positions()]

    def open_orders(self) -> list[BrokerOrder]:
        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=OPEN_ORDERS_LIMIT)
        found = self._read(
            "open orders", lambda: self._client.get_orders(request), lambda raw: _items(raw, self._order)
        )
        return [order for order, _ in found]

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        # Alpaca pages by count: past the limit the newest orders would be missed, so ask for
        # the oldest first and continue after the last one seen.
        found: list[BrokerOrder] = []
        after = since
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus.ALL, after=after, limit=OPEN_ORDERS_LIMIT, direction=Sort.ASC
            )
            page = self._read(
                "recent orders",
                lambda request=request: self._client.get_orders(request),  # type: ignore[misc]
                lambda raw: _items(raw, self._order),
            )
            found += [order for order, _ in page]
            last = page[-1][0].submitted_at if page else None
            if len(page) < OPEN_ORDERS_LIMIT or last is None or last <= after:
                return found
            after = last

    def executions(self, since: datetime) -> list[Execution]:
        # alpaca-py has no method for account activities: the client's own GET, so its session,
        # timeout and retries apply. Pages go oldest first, each continuing after the last id seen.
        found: list[Execution] = []
        params: dict[str, Any] = {
            "activity_types": "FILL",
            "after": since.astimezone(UTC).isoformat(),
            "direction": "asc",
            "page_size": ACTIVITIES_PAGE,
        }
        while True:
            page = self._read(
                "fill activities",
                lambda params=dict(params): self._client.get("/account/activities", params),  # type: ignore[misc]
                lambda raw: _items(raw, self._execution),
            )
            found += page
            if len(page) < ACTIVITIES_PAGE:
                return found
            params["page_token"] = page[-1].execution_id

    def clock(self) -> MarketClock:
        return self._read("clock", self._client.get_clock, _clock)

    def submit(self, order: Order) -> BrokerOrder:
        client_id = order.client_order_id
        crypto = is_crypto(order.symbol)
        qty = round(order.qty, QTY_DECIMALS)
        limit_price = _limit_price(order, crypto)
        refusal = _rule_refusal(order, qty, limit_price, crypto)
        if refusal is not None:
            raise OrderRefused(client_id, refusal, RefusalCode.INVALID_ORDER)
        state_refusal = self._state_refusal(order, qty, crypto)
        if state_refusal is not None:
            existing = self._existing(order, qty)
            if existing is not None:
                logger.info("order %s is already at Alpaca: returning it instead of refusing it", client_id)
                return existing
            raise OrderRefused(client_id, state_refusal[1], state_refusal[0])
        request = _request(order, qty, limit_price, crypto)
        try:
            placed = self._read(
                f"submit {client_id}", lambda: self._client.submit_order(request), self._order, _write_retry
            )
        except AlpacaApiError as error:
            if error.status_code == 422 and error.code == DUPLICATE_CLIENT_ORDER_ID:
                existing = self._existing(order, qty)
                if existing is not None:
                    logger.info("order %s was already submitted: returning Alpaca's order", client_id)
                    return existing
                raise OrderRefused(client_id, f"Alpaca: {error.alpaca_message}", RefusalCode.INVALID_ORDER) from None
            code = _refusal_code(error)
            if code is not None:
                raise OrderRefused(client_id, f"Alpaca: {error.alpaca_message}", code) from None
            raise
        return placed[0]

    def order(self, client_order_id: str) -> BrokerOrder | None:
        found = self._lookup(client_order_id)
        return found[0] if found is not None else None

    def cancel(self, client_order_id: str) -> None:
        """Cancel the order of this id if it is still working; an unknown or final order is left alone.

        Alpaca cancels asynchronously: the order passes through pending_cancel, and may still
        fill meanwhile, so read it again to learn how it ended.
        """
        found = self._lookup(client_order_id)
        if found is None or not _cancelable(*found):
            return
        broker_id = found[0].broker_order_id
        try:
            self._call(
                f"cancel {client_order_id}", lambda: self._client.cancel_order_by_id(str(broker_id)), _write_retry
            )
        except AlpacaApiError as error:
            # 422 "order is not cancelable": it reached a final state after the look-up.
            if error.status_code not in (404, 422):
                raise
            again = self._lookup(client_order_id)
            if again is not None and _cancelable(*again):
                raise

    def fee(self, symbol: str, notional: float) -> float:
        if not is_crypto(symbol):
            return 0.0
        return abs(notional) * self.crypto_fee_bps / 10_000

    def _existing(self, order: Order, qty: float) -> BrokerOrder | None:
        """Alpaca's order of this client id, which must be this order: an id reused for another is refused."""
        existing = self.order(order.client_order_id)
        if existing is None:
            return None
        if (existing.symbol, existing.side) != (order.symbol, order.side) or abs(existing.qty - qty) > QTY_TOLERANCE:
            used_by = f"{existing.side} {_qty_text(existing.qty)} {existing.symbol}"
            raise OrderRefused(
                order.client_order_id,
                f"client order id already used at Alpaca by {used_by}",
                RefusalCode.CLIENT_ORDER_ID_REUSED,
            )
        return existing

    def _state_refusal(self, order: Order, qty: float, crypto: bool) -> tuple[RefusalCode, str] | None:
        """The rule of Alpaca's that the market's, the account's or the asset's state makes the order break."""
        if crypto:
            return None if order.side is Side.BUY else self._crypto_sell_refusal(order, qty)
        clock = self.clock()
        if not clock.is_open:
            return RefusalCode.MARKET_CLOSED, f"market closed until {clock.next_open.isoformat()}"
        return self._equity_refusal(order, qty, clock.next_close)

    def _crypto_sell_refusal(self, order: Order, qty: float) -> tuple[RefusalCode, str] | None:
        held, available = self._holding(order.symbol)
        if qty <= available + QTY_TOLERANCE:
            return None
        reason = f"crypto cannot be sold short: holds {_qty_text(held)}, sell {_qty_text(qty)}"
        if available < held - QTY_TOLERANCE:
            reason += f" ({_qty_text(available)} not held for open orders)"
        # Selling what is held but claimed by open orders passes once they end; a short never does.
        return (RefusalCode.CRYPTO_SHORT if qty > held + QTY_TOLERANCE else RefusalCode.INSUFFICIENT_QTY), reason

    def _equity_refusal(self, order: Order, qty: float, session: datetime) -> tuple[RefusalCode, str] | None:
        """Alpaca's rules on the asset's flags and, for a sell that opens or adds to a short, the short-sale rules."""
        symbol = order.symbol
        asset = self._asset(symbol, session)
        if asset is None:
            return RefusalCode.NOT_TRADABLE, f"Alpaca has no asset {symbol}"
        if not asset.tradable:
            return RefusalCode.NOT_TRADABLE, f"asset {symbol} is not tradable at Alpaca"
        fractional = abs(qty - round(qty)) > QTY_TOLERANCE
        if fractional and not asset.fractionable:
            return RefusalCode.NOT_FRACTIONABLE, f"asset {symbol} is not fractionable: qty {_qty_text(qty)}"
        if order.side is Side.BUY:
            return None
        held, available = self._holding(symbol)
        if held > QTY_TOLERANCE:
            # A sell of a long closes it; one order never turns it into a short.
            if qty <= available + QTY_TOLERANCE:
                return None
            return (
                RefusalCode.INSUFFICIENT_QTY,
                f"insufficient qty available: holds {_qty_text(held)} ({_qty_text(available)} free),"
                f" sell {_qty_text(qty)}",
            )
        if not self._account_may_short(session):
            return RefusalCode.SHORTING_DISABLED, "the account is not allowed to short (shorting_enabled is false)"
        if fractional:
            return RefusalCode.FRACTIONAL_SHORT, f"fractional orders cannot be sold short: qty {_qty_text(qty)}"
        if not asset.shortable:
            return RefusalCode.NOT_SHORTABLE, f"asset {symbol} cannot be sold short (shortable is false)"
        return None

    def _holding(self, symbol: str) -> tuple[float, float]:
        """The position's signed quantity, and the part of it open orders do not hold."""
        for position, available in self._positions():
            if position.symbol == symbol:
                return position.qty, available
        return 0.0, 0.0

    def _asset(self, symbol: str, session: datetime) -> AssetFlags | None:
        """The asset's flags as Alpaca states them this session; None when Alpaca has no such asset."""
        self._enter_session(session)
        if symbol not in self._assets:
            try:
                flags: AssetFlags | None = self._read(
                    f"asset {symbol}", lambda: self._client.get_asset(symbol), _asset_flags
                )
            except AlpacaApiError as error:
                if error.status_code != 404:
                    raise
                flags = None
            self._assets[symbol] = flags
        return self._assets[symbol]

    def _account_may_short(self, session: datetime) -> bool:
        self._enter_session(session)
        if self._shorting_enabled is None:
            self._shorting_enabled = self.account().shorting_enabled
        return self._shorting_enabled

    def _enter_session(self, session: datetime) -> None:
        if session != self._session:
            self._session = session
            self._assets = {}
            self._shorting_enabled = None

    def _positions(self) -> list[tuple[BrokerPosition, float]]:
        """Each position with the quantity open orders do not hold, which is what can be sold."""
        return self._read("positions", self._client.get_all_positions, lambda raw: _items(raw, self._position))

    def _position(self, item: object) -> tuple[BrokerPosition, float]:
        raw = _mapping(item, "position")
        symbol = _text(raw, "symbol", "position")
        what = f"position {symbol}"
        size = abs(_number(raw, "qty", what))
        sign = -1.0 if raw.get("side") == "short" else 1.0
        position = BrokerPosition(
            symbol=self._order_form(symbol, raw.get("asset_class")),
            qty=sign * size,
            avg_entry_price=_number(raw, "avg_entry_price", what),
            market_value=_number(raw, "market_value", what),
        )
        available = abs(_number(raw, "qty_available", what)) if raw.get("qty_available") is not None else size
        return position, sign * available

    def _lookup(self, client_order_id: str) -> tuple[BrokerOrder, str] | None:
        try:
            return self._read(
                f"order {client_order_id}", lambda: self._client.get_order_by_client_id(client_order_id), self._order
            )
        except AlpacaApiError as error:
            if error.status_code == 404:
                return None
            raise

    def _order(self, item: object) -> tuple[BrokerOrder, str]:
        """The order in HYDRA's terms, and Alpaca's own status word."""
        raw = _mapping(item, "order")
        client_id = _text(raw, "client_order_id", "order")
        what = f"order {client_id}"
        side = raw.get("side")
        if side not in (Side.BUY.value, Side.SELL.value):
            raise _malformed(what, f"side {side!r}")
        alpaca_status = _text(raw, "status", what)
        filled_qty = _number(raw, "filled_qty", what) if raw.get("filled_qty") is not None else 0.0
        # A notional order (never HYDRA's) has no qty: what has filled is all that is known.
        qty = _number(raw, "qty", what) if raw.get("qty") is not None else filled_qty
        # Alpaca reports an average of 0 before anything fills.
        avg_price = _number(raw, "filled_avg_price", what) if raw.get("filled_avg_price") is not None else None
        if not avg_price:
            avg_price = None
        status, reason = _status(alpaca_status, filled_qty, raw.get("replaced_by"))
        order = BrokerOrder(
            client_order_id=client_id,
            broker_order_id=_text(raw, "id", what),
            symbol=self._order_form(_text(raw, "symbol", what), raw.get("asset_class")),
            side=Side(side),
            qty=qty,
            order_type=str(raw.get("type") or raw.get("order_type") or ""),
            time_in_force=str(raw.get("time_in_force") or ""),
            status=status,
            filled_qty=filled_qty,
            filled_avg_price=avg_price,
            submitted_at=_optional_timestamp(raw, "submitted_at", what),
            updated_at=_optional_timestamp(raw, "updated_at", what),
            status_reason=reason,
        )
        return order, alpaca_status

    def _execution(self, item: object) -> Execution:
        """A FILL activity; a short sale's side is 'sell_short'."""
        raw = _mapping(item, "fill activity")
        activity_id = _text(raw, "id", "fill activity")
        what = f"fill activity {activity_id}"
        side = raw.get("side")
        if side not in ("buy", "sell", "sell_short"):
            raise _malformed(what, f"side {side!r}")
        return Execution(
            execution_id=activity_id,
            broker_order_id=_text(raw, "order_id", what),
            symbol=self._order_form(_text(raw, "symbol", what), None),
            side=Side.BUY if side == "buy" else Side.SELL,
            qty=abs(_number(raw, "qty", what)),
            price=_number(raw, "price", what),
            ts=_timestamp(raw, "transaction_time", what),
        )

    def _order_form(self, symbol: str, asset_class: object) -> str:
        if "/" in symbol:
            return symbol
        if asset_class == "crypto":
            for quote in CRYPTO_QUOTES:
                if symbol.endswith(quote) and len(symbol) > len(quote):
                    return f"{symbol[: -len(quote)]}/{quote}"
        return self._known_crypto.get(symbol, symbol) if asset_class is None else symbol

    def _read(
        self,
        what: str,
        fetch: Callable[[], object],
        parse: Callable[[object], T],
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> T:
        """The SDK's raw answer parsed, or a BrokerError that carries no key."""
        raw = self._call(what, fetch, retry_if)
        try:
            return parse(raw)
        except _Malformed as error:
            # Scrubbed before it is cut short: a cut could leave half a key that no longer matches.
            raise BrokerError(self._scrub(f"alpaca {what}: unexpected answer: {error}")[:MAX_MESSAGE_CHARS]) from None

    def _call(self, what: str, fetch: Callable[[], T], retry_if: Callable[[BaseException], bool] | None = None) -> T:
        """The SDK's answer, retried up to max_retries times while `retry_if` holds (by default
        a read's transient failures); else its failure as a BrokerError that carries no key.

        A 429 waits what Alpaca asks (Retry-After, else X-Ratelimit-Reset); a wait longer than
        max_wait_s is not waited for: the error is raised, and the next cycle asks again.
        """
        retryable = retry_if or _transient
        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            retry=retry_if_exception(lambda error: retryable(error) and self._wait_s(error) is not None),
            wait=lambda state: self._wait_s(state.outcome.exception() if state.outcome else None) or 0.0,
            before_sleep=lambda state: logger.warning(
                "%s: retry %d of %d",
                state.outcome.exception() if state.outcome else what,
                state.attempt_number,
                self._max_retries,
            ),
            reraise=True,
            sleep=self._sleep,
        )
        answer: T = retrying(self._call_once, what, fetch)
        return answer

    def _wait_s(self, error: BaseException | None) -> float | None:
        """How long to wait before retrying after `error`; None: longer than max_wait_s."""
        stated = error.retry_after_s if isinstance(error, AlpacaApiError) else None
        if stated is None:
            return self._retry_wait_s
        return stated if stated <= self._max_wait_s else None

    def _call_once(self, what: str, fetch: Callable[[], T]) -> T:
        try:
            return fetch()
        except APIError as error:
            body = self._scrub(str(error))
            code, message = _error_body(body)
            status = error.status_code
            if status == 401:
                raise BrokerUnauthorized(
                    f"alpaca {what}: HTTP 401 {message}: {CHECK_KEYS}"[:MAX_MESSAGE_CHARS]
                ) from None
            text = f"alpaca {what}: HTTP {status} {body}"[:MAX_MESSAGE_CHARS]
            raise AlpacaApiError(text, status, code, message, _rate_limit_wait(error)) from None
        except (requests.Timeout, requests.ConnectionError) as error:
            detail = self._scrub(str(error))
            raise AlpacaUnreachable(f"alpaca {what}: {type(error).__name__}: {detail}"[:MAX_MESSAGE_CHARS]) from None
        except requests.RequestException as error:
            detail = self._scrub(str(error))
            raise BrokerError(f"alpaca {what}: {type(error).__name__}: {detail}"[:MAX_MESSAGE_CHARS]) from None
        except (ValueError, TypeError) as error:
            # The SDK's own checks on what it sends and receives (a broker id that is not a UUID).
            detail = self._scrub(str(error))
            raise BrokerError(f"alpaca {what}: {type(error).__name__}: {detail}"[:MAX_MESSAGE_CHARS]) from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text.replace("\n", " ")


def _rule_refusal(order: Order, qty: float, limit_price: float | None, crypto: bool) -> str | None:
    """The breach of a rule that holds whatever the market's state, or None."""
    if qty <= 0:
        return f"qty {order.qty!r} rounds to 0 at Alpaca's {QTY_DECIMALS} decimals"
    if order.order_type == "stop_limit":
        return "a stop_limit order needs a stop price, which HYDRA's Order does not carry"
    if order.order_type == "limit" and (limit_price is None or not math.isfinite(limit_price) or limit_price <= 0):
        return f"a limit order needs a positive limit price, got {order.limit_price!r}"
    if not crypto and order.order_type != "market" and abs(qty - round(qty)) > QTY_TOLERANCE:
        return f"fractional equity orders must be market orders (day): qty {_qty_text(qty)}, type {order.order_type}"
    return None


def _limit_price(order: Order, crypto: bool) -> float | None:
    """The limit price on Alpaca's equity tick, rounded so a buy never pays more nor a sell gets less."""
    if order.order_type != "limit":
        return None
    price = order.limit_price
    if price is None or crypto or not math.isfinite(price) or price <= 0:
        # Crypto ticks vary by pair and Alpaca takes fine prices; a bad price is refused by the rules.
        return price
    tick = EQUITY_TICK if price >= 1 else EQUITY_SUBDOLLAR_TICK
    rounding = ROUND_FLOOR if order.side is Side.BUY else ROUND_CEILING
    return float(Decimal(repr(price)).quantize(tick, rounding=rounding))


def _request(order: Order, qty: float, limit_price: float | None, crypto: bool) -> OrderRequest:
    fields: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": qty,
        "side": OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
        "time_in_force": TimeInForce.GTC if crypto else TimeInForce.DAY,
        "client_order_id": order.client_order_id,
    }
    if order.order_type == "limit":
        return LimitOrderRequest(limit_price=limit_price, **fields)
    return MarketOrderRequest(**fields)


def _status(alpaca_status: str, filled_qty: float, replaced_by: object) -> tuple[OrderStatus, str | None]:
    status = STATUSES.get(alpaca_status, OrderStatus.ACCEPTED)
    if status in WORKING and filled_qty > 0:
        status = OrderStatus.PARTIALLY_FILLED
    if status.value == alpaca_status:
        return status, None
    if alpaca_status == "replaced":
        return status, f"alpaca status replaced (by order {replaced_by})"
    return status, f"alpaca status {alpaca_status}"


def _cancelable(order: BrokerOrder, alpaca_status: str) -> bool:
    return not order.status.is_final and alpaca_status != "pending_cancel"


def _rate_limit_wait(error: APIError) -> float | None:
    response = error.response
    return rate_limit_wait_seconds(response) if response is not None and response.status_code == 429 else None


def _transient(error: BaseException) -> bool:
    """A read's failure that may pass: Alpaca busy, failing or out of reach."""
    return isinstance(error, AlpacaUnreachable) or (
        isinstance(error, AlpacaApiError) and error.status_code in TRANSIENT_STATUS
    )


def _write_retry(error: BaseException) -> bool:
    return isinstance(error, AlpacaApiError) and error.status_code in WRITE_RETRY_STATUS


def _refusal_code(error: AlpacaApiError) -> RefusalCode | None:
    """HYDRA's code for Alpaca's refusal of an order (403 40310000, 422 42210000); None for other errors."""
    if (error.status_code, error.code) not in ((403, FORBIDDEN_ORDER), (422, UNPROCESSABLE_ORDER)):
        return None
    message = error.alpaca_message.lower()
    return next((code for text, code in ALPACA_REFUSALS if text in message), RefusalCode.BROKER_REFUSED)


def _error_body(body: str) -> tuple[int | None, str]:
    """Alpaca's error code and message from an error body, which is JSON when Alpaca wrote it."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, body
    if not isinstance(parsed, dict):
        return None, body
    code = parsed.get("code")
    message = parsed.get("message")
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), (
        message if isinstance(message, str) else body
    )


def _account(raw: object) -> Account:
    fields = _mapping(raw, "")
    return Account(
        cash=_number(fields, "cash", ""),
        equity=_number(fields, "equity", ""),
        buying_power=_number(fields, "buying_power", ""),
        shorting_enabled=_flag(fields, "shorting_enabled", ""),
    )


def _asset_flags(raw: object) -> AssetFlags:
    fields = _mapping(raw, "asset")
    what = f"asset {fields.get('symbol')}"
    return AssetFlags(
        tradable=_flag(fields, "tradable", what),
        shortable=_flag(fields, "shortable", what),
        easy_to_borrow=_flag(fields, "easy_to_borrow", what),
        fractionable=_flag(fields, "fractionable", what),
    )


def _flag(raw: Mapping[str, Any], key: str, what: str) -> bool:
    value = raw.get(key)
    if not isinstance(value, bool):
        raise _malformed(what, f"{key} is not a boolean: {value!r}")
    return value


def _clock(raw: object) -> MarketClock:
    fields = _mapping(raw, "")
    return MarketClock(
        timestamp=_timestamp(fields, "timestamp", ""),
        is_open=_flag(fields, "is_open", ""),
        next_open=_timestamp(fields, "next_open", ""),
        next_close=_timestamp(fields, "next_close", ""),
    )


def _items(raw: object, parse: Callable[[object], T]) -> list[T]:
    if not isinstance(raw, list):
        raise _malformed("", "not a JSON array")
    return [parse(item) for item in raw]


def _mapping(raw: object, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise _malformed(what, "not a JSON object")
    return raw


def _text(raw: Mapping[str, Any], key: str, what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise _malformed(what, f"{key} is missing or not a string: {value!r}")
    return value


def _number(raw: Mapping[str, Any], key: str, what: str) -> float:
    """Alpaca writes money and quantities as strings ("1.5"); numbers are accepted too."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _malformed(what, f"{key} is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise _malformed(what, f"{key} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise _malformed(what, f"{key} is not finite: {value!r}")
    return number


def _timestamp(raw: Mapping[str, Any], key: str, what: str) -> datetime:
    value = _text(raw, key, what)
    try:
        # Alpaca writes nanoseconds and New York offsets; Python 3.11 reads both (to microseconds).
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _malformed(what, f"{key} is not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise _malformed(what, f"{key} has no time zone: {value!r}")
    return moment.astimezone(UTC)


def _optional_timestamp(raw: Mapping[str, Any], key: str, what: str) -> datetime | None:
    return _timestamp(raw, key, what) if raw.get(key) is not None else None


def _qty_text(qty: float) -> str:
    return f"{qty:.{QTY_DECIMALS}f}".rstrip("0").rstrip(".")


def _malformed(what: str, why: str) -> _Malformed:
    return _Malformed(f"{what}: {why}" if what else why)
