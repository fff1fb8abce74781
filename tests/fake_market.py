"""Alpaca paper trading over a whole session: a FakeAlpaca whose orders fill, whose account
follows the fills, and which misbehaves at random, for the paper soak.

What it adds to FakeAlpaca (whose order rules it keeps: orders are placed by `FakeAlpaca.place`):

- prices: a deterministic random walk per symbol, one close a minute from the session's open
  (`RandomWalk`); the same closes make the minute bars HYDRA decides on, so the broker's marks
  and HYDRA's agree;
- `advance(now)` moves the session on: working orders fill at the minute's price, wholly or in
  part (the rest over later cycles), day orders expire at the close, and now and then a person
  closes or halves a position by hand (an order that is not HYDRA's, with its fill);
- the account (cash, equity), the positions and the clock follow; account activities
  (GET /v2/account/activities/FILL, and /v2/account/activities?activity_types=FILL) list every
  fill in Alpaca's format, newest first, paged by page_token;
- faults, drawn from a seeded RNG on every route: 429 with Retry-After, 500, answers slower
  than the client's timeout (for an order: placed, then the answer is late), and for an order
  a 422 "client_order_id must be unique" after it was accepted.

Everything random comes from the seed, so a failing soak fails the same way again.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from fake_alpaca import ORDERS, FakeAlpaca, decimal_text, payload, reply
from paper_session import bar_frame
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 in New York
CLOSE = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 16:00 in New York
PREVIOUS_OPEN = datetime(2026, 2, 27, 14, 30, tzinfo=UTC)  # the Friday before
NEXT_OPEN = OPEN + timedelta(days=1)
MINUTE = timedelta(minutes=1)
SESSION_MINUTES = int((CLOSE - OPEN) / MINUTE)
ACTIVITIES = "/v2/account/activities"
WORKING_STATUSES = ("new", "accepted", "pending_new", "partially_filled")
QTY_DECIMALS = 9

FAULTS = ("rate_limited", "server_error", "slow")
ORDER_FAULTS = (*FAULTS, "duplicate_after_accept")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RandomWalk:
    """Each symbol's minute closes over the previous session (history, for the strategies' hourly
    ranges) and over this one: a seeded geometric random walk.

    Close k of a session is the close of the bar that starts k minutes after its open; it is
    known from the bar's end. Outside the session the price stays at the last close known.
    """

    def __init__(self, seed: int, starts: Mapping[str, float], step_bps: float = 12.0) -> None:
        self.history: dict[str, list[float]] = {}
        self.closes: dict[str, list[float]] = {}
        for symbol, start in sorted(starts.items()):
            rng = random.Random(f"{seed}:{symbol}")
            price, closes = start, []
            for _ in range(2 * SESSION_MINUTES):
                price *= math.exp(rng.gauss(0.0, step_bps / 10_000))
                closes.append(round(price, 2))
            self.history[symbol], self.closes[symbol] = closes[:SESSION_MINUTES], closes[SESSION_MINUTES:]

    def known(self, now: datetime) -> int:
        """How many of this session's closes are known at `now`."""
        return max(0, min(SESSION_MINUTES, int((now - OPEN) / MINUTE)))

    def last(self, symbol: str, now: datetime) -> float:
        known = self.known(now)
        return self.closes[symbol][known - 1] if known else self.history[symbol][-1]

    def ahead(self, symbol: str, now: datetime, minutes: int) -> list[float]:
        """The closes of the session's next minutes, unknown at `now`."""
        known = self.known(now)
        return self.closes[symbol][known : known + minutes]

    def bars(self, now: datetime) -> pl.DataFrame:
        known = self.known(now)
        return pl.concat(
            [
                bar_frame(self.history, volume=5e5, start=PREVIOUS_OPEN),
                bar_frame({s: closes[:known] for s, closes in self.closes.items()}, volume=5e5, start=OPEN),
            ]
        )


@dataclass
class Holding:
    qty: float  # signed: negative is short
    avg_entry: float


@dataclass(frozen=True, slots=True)
class Fault:
    at: datetime
    method: str
    path: str
    kind: str


@dataclass(frozen=True, slots=True)
class ManualClose:
    at: datetime
    symbol: str
    qty: float  # signed, as traded: a sell of a long is negative
    price: float


@dataclass
class FaultPlan:
    """How often a request is answered with a fault (an order's more often: orders are few and
    their faults the costliest); the kinds' relative weights."""

    rate: float = 0.06
    order_rate: float = 0.3
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"rate_limited": 0.5, "server_error": 2.0, "slow": 1.0, "duplicate_after_accept": 4.0}
    )
    slow_s: float = 0.8  # longer than the client's timeout
    retry_after_s: int = 1


class FakeMarket(FakeAlpaca):
    """A session at Alpaca: see the module docstring. `advance(now)` before each cycle."""

    def __init__(
        self,
        server: HTTPServer,
        walk: RandomWalk,
        *,
        seed: int,
        cash: float,
        unmanaged: Mapping[str, tuple[float, float]],  # held before HYDRA: symbol -> (qty, fixed price)
        faults: FaultPlan | None = None,
        fill_chances: tuple[float, float] = (0.55, 0.3),  # of filling all that is left; of filling a part
        instant_fill_chance: float = 0.0,  # of a market order filling as it is accepted, in session
        manual_close_chance: float = 0.0,
    ) -> None:
        super().__init__(server)
        self.walk = walk
        self.rng = random.Random(seed)
        self.cash = cash
        self.held: dict[str, Holding] = {s: Holding(q, p) for s, (q, p) in unmanaged.items()}
        self.fixed_prices = {s: p for s, (_, p) in unmanaged.items()}
        self.plan = faults or FaultPlan(rate=0.0, order_rate=0.0)
        self.fill_chances = fill_chances
        self.instant_fill_chance = instant_fill_chance
        self.manual_close_chance = manual_close_chance
        self.activities: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.manual_closes: list[ManualClose] = []
        self.now = OPEN
        self._sync()

    # The session moves on.

    def advance(self, now: datetime, manual_close_symbols: Sequence[str] = ()) -> None:
        """Fill working orders at `now`'s prices, expire day orders at the close, and maybe close
        by hand one of `manual_close_symbols` that no order is working on."""
        self.now = now
        # The hand acts half a minute before `now` (close_by_hand), when the orders that fill at
        # `now` were still working: their symbols are not closed by hand in this minute.
        busy = {order["symbol"] for order in self._working()}
        if now <= CLOSE:
            for order in self._working():
                self._maybe_fill(order)
        else:
            for order in self._working():
                order.update(status="expired", expired_at=iso(CLOSE), updated_at=iso(CLOSE))
        if now < CLOSE and self.rng.random() < self.manual_close_chance:
            candidates = [s for s in manual_close_symbols if s in self.held and s not in busy]
            if candidates:
                symbol = self.rng.choice(sorted(candidates))
                self.close_by_hand(symbol, self.rng.choice((1.0, 0.5)))
        self._sync()

    def price(self, symbol: str) -> float:
        if symbol in self.fixed_prices:
            return self.fixed_prices[symbol]
        return self.walk.last(symbol, self.now)

    def equity(self) -> float:
        return self.cash + sum(h.qty * self.price(s) for s, h in self.held.items())

    def close_by_hand(self, symbol: str, fraction: float) -> None:
        """What a person does on Alpaca's site: a market order, not HYDRA's, filled at once, half a
        minute before `now`, at the price then (not the mark HYDRA reads at `now`)."""
        at = self.now - MINUTE / 2
        held = self.held[symbol].qty
        qty = round(abs(held) * fraction, QTY_DECIMALS) if fraction < 1 else abs(held)
        side = "sell" if held > 0 else "buy"
        price = self.fixed_prices.get(symbol) or self.walk.last(symbol, at)
        order = payload("order_accepted.json") | {
            "id": str(uuid.uuid4()),
            "client_order_id": str(uuid.uuid4()),
            "symbol": symbol,
            "qty": decimal_text(qty),
            "side": side,
            "created_at": iso(at),
            "submitted_at": iso(at),
            "updated_at": iso(at),
            "expires_at": iso(CLOSE),
        }
        self.orders[order["client_order_id"]] = order
        self._fill(order, qty, price, at)
        self.manual_closes.append(ManualClose(at, symbol, qty if side == "buy" else -qty, price))

    def _working(self) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] in WORKING_STATUSES]

    def _maybe_fill(self, order: dict[str, Any]) -> None:
        if order["submitted_at"] >= iso(self.now):
            return  # placed this very minute: it fills from the next one
        price = self.price(order["symbol"])
        limit = order.get("limit_price")
        if limit is not None and (price > float(limit) if order["side"] == "buy" else price < float(limit)):
            return
        left = float(order["qty"]) - float(order["filled_qty"] or 0)
        draw = self.rng.random()
        whole, part = self.fill_chances
        if draw < whole:
            self._fill(order, left, price)
        elif draw < whole + part:
            chunk = round(left * self.rng.uniform(0.2, 0.8), QTY_DECIMALS)
            if float(order["qty"]) == int(float(order["qty"])):
                chunk = float(max(1, int(chunk)))
            self._fill(order, min(chunk, left), price)

    def _fill(self, order: dict[str, Any], qty: float, price: float, at: datetime | None = None) -> None:
        """One execution (at `at`, by default now): the order's totals, the position, the cash,
        and the FILL activity."""
        at = at or self.now
        before = float(order["filled_qty"] or 0)
        cum = round(before + qty, QTY_DECIMALS)
        average = (before * float(order["filled_avg_price"] or 0) + qty * price) / cum
        done = cum >= float(order["qty"]) - 0.5 * 10**-QTY_DECIMALS
        status = "filled" if done else "partially_filled"
        order.update(
            filled_qty=decimal_text(cum),
            filled_avg_price=decimal_text(round(average, 9)),
            status=status,
            updated_at=iso(at),
            filled_at=iso(at) if done else None,
        )
        symbol = order["symbol"]
        signed = qty if order["side"] == "buy" else -qty
        holding = self.held.get(symbol, Holding(0.0, 0.0))
        self.cash -= signed * price
        after = round(holding.qty + signed, QTY_DECIMALS)
        if abs(after) < 0.5 * 10**-QTY_DECIMALS:
            self.held.pop(symbol, None)
        elif holding.qty == 0 or (holding.qty > 0) != (after > 0):
            self.held[symbol] = Holding(after, price)  # opened, or turned around
        elif abs(after) > abs(holding.qty):
            self.held[symbol] = Holding(after, (holding.avg_entry * holding.qty + price * signed) / after)
        else:
            self.held[symbol] = Holding(after, holding.avg_entry)
        opens_short = order["side"] == "sell" and holding.qty <= 0
        self.activities.append(
            {
                # Alpaca's ids sort by time; the sequence number orders fills of one second.
                "id": f"{at:%Y%m%d%H%M%S}{len(self.activities):09d}::{uuid.uuid4()}",
                "activity_type": "FILL",
                "transaction_time": iso(at),
                "type": "fill" if done else "partial_fill",
                "price": decimal_text(price),
                "qty": decimal_text(qty),
                "side": "sell_short" if opens_short else order["side"],
                "symbol": symbol,
                "leaves_qty": decimal_text(round(float(order["qty"]) - cum, QTY_DECIMALS)),
                "order_id": order["id"],
                "cum_qty": decimal_text(cum),
                "order_status": status,
            }
        )

    def _sync(self) -> None:
        """FakeAlpaca's positions and clock, as Alpaca would answer them now."""
        self.positions = [self._position(symbol, holding) for symbol, holding in sorted(self.held.items())]
        is_open = OPEN <= self.now < CLOSE
        self.clock = {
            "timestamp": iso(self.now),
            "is_open": is_open,
            "next_open": iso(OPEN if self.now < OPEN else NEXT_OPEN),
            "next_close": iso(CLOSE if self.now < CLOSE else NEXT_OPEN + (CLOSE - OPEN)),
        }

    def _position(self, symbol: str, holding: Holding) -> dict[str, Any]:
        price = self.price(symbol)
        value = holding.qty * price
        cost = holding.qty * holding.avg_entry
        return payload("positions.json")[1] | {
            "symbol": symbol,
            "asset_class": "us_equity",
            "qty": decimal_text(holding.qty),
            "qty_available": decimal_text(holding.qty),
            "side": "long" if holding.qty > 0 else "short",
            "avg_entry_price": decimal_text(round(holding.avg_entry, 9)),
            "market_value": decimal_text(round(value, 9)),
            "cost_basis": decimal_text(round(cost, 9)),
            "unrealized_pl": decimal_text(round(value - cost, 9)),
            "current_price": decimal_text(price),
        }

    def _account(self) -> dict[str, Any]:
        equity = self.equity()
        longs = sum(h.qty * self.price(s) for s, h in self.held.items() if h.qty > 0)
        shorts = sum(h.qty * self.price(s) for s, h in self.held.items() if h.qty < 0)
        return payload("account.json") | {
            "cash": decimal_text(round(self.cash, 9)),
            "equity": decimal_text(round(equity, 9)),
            "portfolio_value": decimal_text(round(equity, 9)),
            "buying_power": decimal_text(round(2 * equity, 2)),
            "regt_buying_power": decimal_text(round(2 * equity, 2)),
            "long_market_value": decimal_text(round(longs, 9)),
            "short_market_value": decimal_text(round(shorts, 9)),
            "position_market_value": decimal_text(round(longs - shorts, 9)),
        }

    # HTTP.

    def handle(self, request: Request) -> Response:
        placing = (request.method, request.path) == ("POST", ORDERS)
        kinds = ORDER_FAULTS if placing else FAULTS
        if self.rng.random() < (self.plan.order_rate if placing else self.plan.rate):
            kind = self.rng.choices(kinds, weights=[self.plan.weights[k] for k in kinds])[0]
            self.faults.append(Fault(self.now, request.method, request.path, kind))
            return self._fault(kind, request)
        return self._answer(request)

    def _answer(self, request: Request) -> Response:
        if (request.method, request.path) == ("GET", "/v2/account"):
            return reply(self._account())
        if request.method == "GET" and request.path.startswith(ACTIVITIES):
            return self._activities(request)
        return super().handle(request)

    def _fault(self, kind: str, request: Request) -> Response:
        if kind == "rate_limited":
            response = reply(payload("error_429.json"), 429)
            response.headers["Retry-After"] = str(self.plan.retry_after_s)
            return response
        if kind == "server_error":
            return reply(payload("error_500.json"), 500)
        if kind == "duplicate_after_accept":
            self._answer(request)
            return reply(payload("error_422_duplicate_client_order_id.json"), 422)
        answer = self._answer(request)  # slow: done, but answered after the client gave up
        time.sleep(self.plan.slow_s)
        return answer

    def place(self, request: Request) -> Response:
        """FakeAlpaca's placing, stamped with the session's time; a market order in session may
        fill at once, after the answer (which shows it accepted) was written."""
        answer = super().place(request)
        if answer.status_code != 200:
            return answer
        order = self.orders[request.get_json()["client_order_id"]]
        order.update(
            created_at=iso(self.now), submitted_at=iso(self.now), updated_at=iso(self.now), expires_at=iso(CLOSE)
        )
        accepted = reply(order)
        if order["type"] == "market" and OPEN <= self.now < CLOSE and self.rng.random() < self.instant_fill_chance:
            self._fill(order, float(order["qty"]), self.price(order["symbol"]))
            self._sync()
        return accepted

    def _activities(self, request: Request) -> Response:
        """Alpaca's account activities of type FILL: `after`/`until`/`date` bound the time,
        `direction` (desc by default) orders, `page_size` (100) and `page_token` page."""
        path_type = request.path[len(ACTIVITIES) :].strip("/")
        wanted = {path_type} if path_type else set(request.args.get("activity_types", "FILL").split(","))
        found = [a for a in self.activities if a["activity_type"] in wanted]
        for bound, keep in (("after", lambda t, b: t > b), ("until", lambda t, b: t < b)):
            if bound in request.args:
                edge = datetime.fromisoformat(request.args[bound].replace("Z", "+00:00"))
                found = [a for a in found if keep(datetime.fromisoformat(a["transaction_time"]), edge)]
        if "date" in request.args:
            found = [a for a in found if a["transaction_time"].startswith(request.args["date"])]
        descending = request.args.get("direction", "desc") == "desc"
        found.sort(key=lambda a: a["id"], reverse=descending)
        token = request.args.get("page_token")
        if token:
            found = [a for a in found if (a["id"] < token if descending else a["id"] > token)]
        return reply(found[: int(request.args.get("page_size", 100))])


def hydra_orders(market: FakeMarket) -> dict[str, dict[str, Any]]:
    """The orders Alpaca accepted from HYDRA (its client ids), by client id."""
    return {cid: order for cid, order in market.orders.items() if cid.startswith("hy-")}
