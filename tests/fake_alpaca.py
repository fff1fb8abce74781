"""A local Alpaca paper-trading server (pytest-httpserver) answering in Alpaca's formats.

Shared by the broker's own tests and the trading-flow tests, which drive the real alpaca-py
client through it.
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
        self.clock: dict[str, Any] = payload("clock_open.json")
        self.script: dict[tuple[str, str], list[Handler]] = defaultdict(list)
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        key = (request.method, request.path)
        if self.script[key]:
            return self.script[key].pop(0)(request)
        if key == ("GET", "/v2/account"):
            return reply(payload("account.json"))
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

    def cancel(self, broker_id: str) -> Response:
        for order in self.orders.values():
            if order["id"] == broker_id:
                if order["status"] in FINAL_ALPACA_STATUSES:
                    return reply(payload("error_422_not_cancelable.json"), 422)
                order["status"] = "canceled"
                return Response(status=204)
        return reply(payload("error_404_order_not_found.json"), 404)

    def put(self, name: str, client_id: str | None = None, **fields: Any) -> dict[str, Any]:
        order = payload(name) | fields
        if client_id is not None:
            order["client_order_id"] = client_id
        self.orders[order["client_order_id"]] = order
        return order


def trade_through(server: HTTPServer, monkeypatch: Any, api_key: str = API_KEY, secret_key: str = SECRET_KEY) -> None:
    """Point HYDRA's paper trading at this server, with these keys, and no retries to wait for."""
    monkeypatch.setenv("ALPACA_API_KEY", api_key)
    monkeypatch.setenv("ALPACA_SECRET_KEY", secret_key)
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_TRADING__BASE_URL", server.url_for("").rstrip("/"))
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_TRADING__MAX_RETRIES", "0")
