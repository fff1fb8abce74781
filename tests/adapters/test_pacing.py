"""Request pacing: at most N requests in any minute, every attempt counted, one pacer per upstream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.alpaca_data import fetch_bars, make_crypto_client
from adapters.http import HttpClient
from adapters.pacing import RequestPacer, shared_pacer


@dataclass
class Clock:
    """A clock that only moves when someone sleeps on it."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_pacer_admits_its_rate_in_any_minute_and_makes_the_next_request_wait() -> None:
    clock = Clock()
    pacer = RequestPacer(3, clock=clock.time, sleep=clock.sleep)

    for _ in range(3):
        pacer.wait_turn()
        clock.now += 10.0
    assert clock.slept == []  # three in the first 30 s
    pacer.wait_turn()
    assert clock.slept == [30.0]  # the fourth waits until the first is a minute old
    pacer.wait_turn()
    assert clock.slept == [30.0, 10.0]
    assert pacer.admitted == 5


def test_a_pacer_refuses_a_rate_below_one() -> None:
    with pytest.raises(ValueError, match="at least one request a minute"):
        RequestPacer(0)


def test_one_pacer_per_upstream_and_rate() -> None:
    assert shared_pacer("https://api.example.com", 100) is shared_pacer("https://api.example.com", 100)
    assert shared_pacer("https://api.example.com", 100) is not shared_pacer("https://other.example.com", 100)


def test_every_attempt_of_the_http_client_waits_for_its_turn_retries_included(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/data").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/data").respond_with_json({"ok": True})
    clock = Clock()
    client = HttpClient(
        feed="fred",
        base_url=httpserver.url_for("").rstrip("/"),
        user_agent="HYDRA-test",
        backoff_s=0.0,
        pacer=RequestPacer(1, clock=clock.time, sleep=clock.sleep),
    )

    assert client.get_json("/data") == {"ok": True}

    assert len(clock.slept) == 1 and clock.slept[0] == pytest.approx(60.0)


def test_every_page_the_alpaca_sdk_asks_for_waits_for_its_turn(alpaca_server: HTTPServer) -> None:
    def page(request: Request) -> Response:
        number = int(request.args.get("page_token") or 0)
        bar = {"t": f"2026-03-02T14:3{number}:00Z", "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1.0}
        body = {"bars": {"BTC/USD": [bar]}, "next_page_token": str(number + 1) if number < 2 else None}
        return Response(json.dumps(body), content_type="application/json")

    alpaca_server.expect_request("/v1beta3/crypto/us/bars").respond_with_handler(page)
    clock = Clock()
    pacer = RequestPacer(2, clock=clock.time, sleep=clock.sleep)
    crypto = make_crypto_client(alpaca_server.url_for("").rstrip("/"), retry_wait_s=0.0, pacer=pacer)
    start, end = datetime(2026, 3, 2, 14, 30, tzinfo=UTC), datetime(2026, 3, 2, 15, tzinfo=UTC)

    batch = fetch_bars(None, crypto, ["BTC/USD"], "1Min", start, end, end)

    assert batch.tables["bars"].height == 3  # three pages
    assert pacer.admitted == 3 and clock.slept == [60.0]  # the third page waited for its turn
