"""A local Alpaca paper-trading server (pytest-httpserver) answering in Alpaca's formats.

Shared by the broker's own tests and the trading-flow tests, which drive the real alpaca-py
client through it. It keeps Alpaca's rules (FEEDS.md, "Alpaca" and "Alpaca short sales"),
so an order HYDRA should have refused itself is refused here as Alpaca would refuse it:

    POST /v2/orders, checked in this order; nothing refused is placed
      client id already used                    422 40010001 client_order_id must be unique
      no such asset                             422 40010001 asset "X" not found
      asset tradable false                      422 42210000 asset "X" is not tradable
      crypto time_in_force not gtc/ioc          422 42210000 invalid crypto time_in_force
      fractional qty, asset fractionable false  422 42210000 requested asset is not fractionable
      an open opposite-side order that could    403 40310000 potential wash trade detected.
        cross (either is market, or the buy's                 use complex orders
        limit >= the sell's)
      a sell of more than the long's free qty   403 40310000 insufficient qty available for order
        (a buy of more than a short's; any                    (requested: Q, available: A)
        crypto sell beyond what is held:
        crypto is never shorted)
      an equity sell from flat or short (opens or adds to a short):
        account shorting_enabled false          403 40310000 account is not allowed to short
        fractional qty                          422 42210000 fractional orders cannot be sold short
        asset shortable false                   422 42210000 asset "X" cannot be sold short
        easy_to_borrow false, not a day order   422 42210000 only day orders are allowed for
                                                             hard-to-borrow asset X
    GET /v2/assets/{symbol}   the asset's flags (tests/data/alpaca_broker/assets.json), or 404
    GET /v2/account           account.json, with shorting_enabled

Buying power is not modelled (the fake has no prices): stage a 403 "insufficient buying
power" with `script`. Positions do not follow fills either: a test sets `positions`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

DATA = Path(__file__).parent / "data" / "alpaca_broker"
API_KEY = "PKPAPER4H7Q2M9XKEYID"
SECRET_KEY = "sk-paper-8vN3wQpL1rT6yU0iO7aSecret"
NOW = datetime(2026, 3, 2, 15, 15, tzinfo=UTC)
ORDERS = "/v2/orders"
BY_CLIENT_ID = "/v2/orders:by_client_order_id"
ASSETS = "/v2/assets/"
ACTIVITIES = "/v2/account/activities"
ACCOUNT_ID = "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
ACTIVITIES_PAGE_MAX = 100
FINAL_ALPACA_STATUSES = ("filled", "canceled", "expired", "rejected", "replaced")
RETRIES = 2

Handler = Callable[[Request], Response]


def payload(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def reply(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def decimal_text(value: float) -> str:
    """A quantity as Alpaca writes it: '10', '0.3'."""
    return format(Decimal(str(value)).normalize(), "f")


class FakeAlpaca:
    """Alpaca paper trading as it answers: recorded payloads, and orders kept by client order id.

    `script` queues one-off answers per (method, path), served before the normal behaviour,
    to stage rate limits, outages and races.
    """

    def __init__(self, server: HTTPServer) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.posted: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = payload("positions.json")
        self.activities: list[dict[str, Any]] = []  # FILL activities, oldest first
        self.clock: dict[str, Any] = payload("clock_open.json")
        self.account: dict[str, Any] = payload("account.json")
        self.assets: dict[str, dict[str, Any]] = {asset["symbol"]: asset for asset in payload("assets.json")}
        self.script: dict[tuple[str, str], list[Handler]] = defaultdict(list)
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        key = (request.method, request.path)
        if self.script[key]:
            return self.script[key].pop(0)(request)
        if key == ("GET", "/v2/account"):
            return reply(self.account)
        if key == ("GET", "/v2/positions"):
            return reply(self.positions)
        if key == ("GET", "/v2/clock"):
            return reply(self.clock)
        if key == ("POST", ORDERS):
            return self.place(request)
        if key == ("GET", ORDERS):
            return reply(self.listed(request))
        if key == ("GET", BY_CLIENT_ID):
            found = self.orders.get(request.args["client_order_id"])
            return reply(found) if found else reply(payload("error_404_order_not_found.json"), 404)
        if request.method == "GET" and request.path.startswith(ASSETS):
            asset = self.asset(request.path.removeprefix(ASSETS))
            return reply(asset) if asset else reply(payload("error_404_asset_not_found.json"), 404)
        if request.method == "GET" and request.path in (ACTIVITIES, ACTIVITIES + "/FILL"):
            return self.fill_activities(request)
        if request.method == "DELETE" and request.path.startswith(ORDERS + "/"):
            return self.cancel(request.path.rsplit("/", 1)[1])
        return reply({"code": 40410000, "message": "endpoint not found"}, 404)

    def listed(self, request: Request) -> list[dict[str, Any]]:
        """GET /v2/orders: open ones by default; status=all with `after` (submitted strictly after)."""
        orders = list(self.orders.values())
        if request.args.get("status", "open") == "open":
            orders = [o for o in orders if o["status"] not in FINAL_ALPACA_STATUSES]
        if "after" in request.args:
            after = request.args["after"].replace("Z", "+00:00")
            orders = [o for o in orders if o["submitted_at"].replace("Z", "+00:00") > after]
        orders.sort(key=lambda o: o["submitted_at"], reverse=request.args.get("direction", "desc") == "desc")
        return orders[: int(request.args.get("limit", 50))]

    def place(self, request: Request) -> Response:
        body = request.get_json()
        self.posted.append(body)
        client_id = body["client_order_id"]
        if client_id in self.orders:
            return reply(payload("error_422_duplicate_client_order_id.json"), 422)
        refusal = self.refusal(body)
        if refusal is not None:
            return refusal
        crypto = "/" in body["symbol"]
        order = payload("order_accepted.json") | {
            "id": str(uuid.uuid4()),
            "client_order_id": client_id,
            "symbol": body["symbol"],
            "asset_class": "crypto" if crypto else "us_equity",
            "qty": decimal_text(body["qty"]),
            "side": body["side"],
            "type": body["type"],
            "order_type": body["type"],
            "time_in_force": body["time_in_force"],
            "limit_price": decimal_text(body["limit_price"]) if "limit_price" in body else None,
        }
        self.orders[client_id] = order
        return reply(order)

    def asset(self, symbol: str) -> dict[str, Any] | None:
        """By symbol, as Alpaca takes it: 'BTC/USD' or 'BTCUSD'."""
        for asset in self.assets.values():
            if symbol in (asset["symbol"], asset["symbol"].replace("/", "")):
                return asset
        return None

    def refusal(self, body: dict[str, Any]) -> Response | None:
        """Alpaca's answer to an order that breaks one of its rules (the module's table), else None."""
        symbol, side, tif = body["symbol"], body["side"], body["time_in_force"]
        qty = Decimal(str(body["qty"]))
        asset = self.asset(symbol)
        if asset is None:
            return reply({"code": 40010001, "message": f'asset "{symbol}" not found'}, 422)
        if not asset["tradable"]:
            return refused("error_422_not_tradable.json", f'asset "{symbol}" is not tradable')
        crypto = asset["class"] == "crypto"
        if crypto and tif not in ("gtc", "ioc"):
            return refused("error_422_crypto_time_in_force.json")
        fractional = qty != qty.to_integral_value()
        if fractional and not asset["fractionable"]:
            return refused("error_422_not_fractionable.json")
        if any(could_cross(order, body) for order in self.orders.values()):
            return refused("error_403_wash_trade.json")
        held, available = self.holding(symbol)
        if side == "buy":
            held, available = -held, -available  # what a buy reduces is a short
        if held > 0 or (crypto and side == "sell"):
            if qty <= available:
                return None
            return reply(
                payload("error_403_insufficient_qty.json")
                | {
                    "existing_qty": decimal_text(float(abs(held))),
                    "held_for_orders": decimal_text(float(held - available)),
                    "message": f"insufficient qty available for order (requested: {qty}, available: {available})",
                    "symbol": symbol.replace("/", ""),
                },
                403,
            )
        if side == "buy":
            return None
        if not self.account["shorting_enabled"]:
            return refused("error_403_shorting_disabled.json")
        if fractional:
            return refused("error_422_fractional_short.json")
        if not asset["shortable"]:
            return refused("error_422_not_shortable.json", f'asset "{symbol}" cannot be sold short')
        if not asset["easy_to_borrow"] and tif != "day":
            return reply(
                {"code": 42210000, "message": f"only day orders are allowed for hard-to-borrow asset {symbol}"}, 422
            )
        return None

    def holding(self, symbol: str) -> tuple[Decimal, Decimal]:
        """The position's signed quantity and what open orders do not hold of it."""
        for position in self.positions:
            if position["symbol"] == symbol.replace("/", ""):
                sign = -1 if position["side"] == "short" else 1
                held = Decimal(position["qty"]) * sign
                return held, Decimal(position.get("qty_available") or position["qty"]) * sign
        return Decimal(0), Decimal(0)

    def cancel(self, broker_id: str) -> Response:
        for order in self.orders.values():
            if order["id"] == broker_id:
                if order["status"] in FINAL_ALPACA_STATUSES:
                    return reply(payload("error_422_not_cancelable.json"), 422)
                order["status"] = "canceled"
                return Response(status=204)
        return reply(payload("error_404_order_not_found.json"), 404)

    def fill_activities(self, request: Request) -> Response:
        """GET /v2/account/activities[/FILL]: FILL rows after `after`, paged by `page_token` (an id)."""
        types = request.args.get("activity_types", "FILL") if request.path == ACTIVITIES else "FILL"
        if types != "FILL":
            return reply({"code": 40010001, "message": f"invalid activity type: {types}"}, 422)
        rows = list(self.activities)
        if "after" in request.args:
            after = datetime.fromisoformat(request.args["after"].replace("Z", "+00:00"))
            rows = [a for a in rows if datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")) > after]
        if request.args.get("direction", "desc") == "desc":
            rows.reverse()
        if "page_token" in request.args:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(request.args["page_token"]) + 1 :]
        return reply(rows[: min(int(request.args.get("page_size", ACTIVITIES_PAGE_MAX)), ACTIVITIES_PAGE_MAX)])

    def execute(self, order: dict[str, Any], qty: float, price: float, at: datetime) -> dict[str, Any]:
        """Fill `qty` more of `order` at `price`: the order's cumulative fields and a FILL activity, as Alpaca."""
        filled = float(order.get("filled_qty") or 0) + qty
        average = (float(order.get("filled_avg_price") or 0) * (filled - qty) + price * qty) / filled
        done = filled >= float(order["qty"]) - 1e-9
        stamp = at.isoformat().replace("+00:00", "Z")
        order.update(
            status="filled" if done else "partially_filled",
            filled_qty=decimal_text(filled),
            filled_avg_price=decimal_text(round(average, 9)),
            filled_at=stamp if done else None,
            updated_at=stamp,
        )
        activity = {
            "id": f"{at:%Y%m%d%H%M%S%f}::{uuid.uuid4()}",
            "account_id": ACCOUNT_ID,
            "activity_type": "FILL",
            "transaction_time": stamp,
            "type": "fill" if done else "partial_fill",
            "price": decimal_text(price),
            "qty": decimal_text(qty),
            "side": order["side"],
            "symbol": order["symbol"],
            "leaves_qty": decimal_text(float(order["qty"]) - filled),
            "order_id": order["id"],
            "cum_qty": decimal_text(filled),
            "order_status": order["status"],
        }
        self.activities.append(activity)
        return activity

    def trade_by_hand(self, symbol: str, side: str, qty: float, price: float, at: datetime) -> dict[str, Any]:
        """An order placed and filled in Alpaca's dashboard: not HYDRA's id, filled at `price`."""
        stamp = at.isoformat().replace("+00:00", "Z")
        order = payload("order_filled.json") | {
            "id": str(uuid.uuid4()),
            "client_order_id": str(uuid.uuid4()),
            "symbol": symbol,
            "asset_class": "crypto" if "/" in symbol else "us_equity",
            "qty": decimal_text(qty),
            "filled_qty": "0",
            "filled_avg_price": None,
            "side": side,
            "time_in_force": "gtc" if "/" in symbol else "day",
            "created_at": stamp,
            "submitted_at": stamp,
        }
        self.orders[order["client_order_id"]] = order
        self.execute(order, qty, price, at)
        return order

    def put(self, name: str, client_id: str | None = None, **fields: Any) -> dict[str, Any]:
        order = payload(name) | fields
        if client_id is not None:
            order["client_order_id"] = client_id
        self.orders[order["client_order_id"]] = order
        return order


def refused(name: str, message: str | None = None) -> Response:
    """Alpaca's refusal from its recorded payload (403 or 422, by the file's name), for this order's symbol."""
    body = payload(name) | ({"message": message} if message else {})
    return reply(body, 403 if name.startswith("error_403") else 422)


def could_cross(order: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether a working `order` on the other side of `body` could trade with it: Alpaca's wash-trade test."""
    if order["status"] in FINAL_ALPACA_STATUSES or order["symbol"] != body["symbol"] or order["side"] == body["side"]:
        return False
    buy, sell = (order, body) if order["side"] == "buy" else (body, order)
    if buy.get("type") != "limit" or sell.get("type") != "limit":
        return True
    return Decimal(str(buy["limit_price"])) >= Decimal(str(sell["limit_price"]))


def trade_through(server: HTTPServer, monkeypatch: Any, api_key: str = API_KEY, secret_key: str = SECRET_KEY) -> None:
    """Point HYDRA's paper trading at this server, with these keys, and no retries to wait for."""
    monkeypatch.setenv("ALPACA_API_KEY", api_key)
    monkeypatch.setenv("ALPACA_SECRET_KEY", secret_key)
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_TRADING__BASE_URL", server.url_for("").rstrip("/"))
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_TRADING__MAX_RETRIES", "0")
