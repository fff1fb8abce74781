"""The trading loop (`hydra run --mode paper`, `hydra trade`): a failed cycle is recorded and the
loop goes on; only a fatal condition stops it, with one line and its exit code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import typer
from fake_alpaca import NOW, ORDERS, FakeAlpaca, reply, trade_through
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.alpaca_broker import AlpacaApiError
from adapters.broker import BrokerError, BrokerUnauthorized
from hydra.cli import EXIT_CONFIG, EXIT_WAREHOUSE, fatal, paper_loop
from hydra.live import DecisionAhead
from hydra.settings import ConfigError, load_settings
from warehouse import WarehouseTooNewError
from warehouse.errors import WarehouseLockedError

WAREHOUSE = Path("data/hydra.duckdb")
FEEDS = ("alpaca_data", "binance", "cme", "sge", "lbma", "bls", "fomc", "fred", "github", "cboe")


@dataclass
class FakeTime:
    """The loop's clock and sleep: a minute passes in no time."""

    now: datetime

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def feeds_answered_by(url: str) -> None:
    """Every feed asks the fake Alpaca, which knows none of their routes: each fails at once, once,
    in the loop's first minute (no feed is due again within the test)."""
    lines = ["[feeds]", "fetch_retry_delays_s = []", "[feeds.narrative]", "feeds = []", "[feeds.schedules]"]
    lines += [f"{feed} = 86400" for feed in ("bars", "binance", "cme", "metal_premium", "macro_calendar")]
    lines += [f"{feed} = 86400" for feed in ("github", "narrative", "vol_credit")]
    for feed in FEEDS:
        lines += [f"[feeds.{feed}]", f'base_url = "{url}"', "max_retries = 0"]
    Path("hydra.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def query(sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        return con.execute(sql).fetchall()


def orders_listed(server: HTTPServer) -> list[int]:
    """The status of each answer to GET /v2/orders, in order."""
    return [answer.status_code for request, answer in server.log if (request.method, request.path) == ("GET", ORDERS)]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_paper_loop_survives_a_broker_error_records_it_and_runs_every_cycle(
    alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeAlpaca(alpaca_server)
    trade_through(alpaca_server, monkeypatch)
    feeds_answered_by(alpaca_server.url_for("").rstrip("/"))

    def listed(request: Request) -> Response:
        return reply(fake.listed(request))

    def outage(_: Request) -> Response:
        return reply({"code": 50010000, "message": "internal server error"}, 500)

    # The first cycle lists the orders as usual; the second's list answers 500 once.
    fake.script[("GET", ORDERS)] += [listed, outage]
    time = FakeTime(NOW + timedelta(seconds=5))

    paper_loop(load_settings(mode="paper"), 4, clock=time.clock, sleep=time.sleep)  # returns: exit 0

    decided = query("SELECT ts_event FROM cycles WHERE run_id = 'paper-main' ORDER BY ts_event")
    assert [row[0] for row in decided] == [NOW, NOW + timedelta(minutes=2), NOW + timedelta(minutes=3)]
    alerts = query("SELECT kind, subject, message FROM alerts WHERE kind IN ('broker_error', 'cycle_failed')")
    assert [(kind, subject) for kind, subject, _ in alerts] == [("broker_error", "paper-main")]
    assert "alpaca recent orders: HTTP 500" in str(alerts[0][2])
    stderr = capsys.readouterr().err
    assert "trading cycle failed (recorded in alerts; the loop goes on): alpaca recent orders: HTTP 500" in stderr


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_keys_the_broker_refuses_stop_the_loop_with_one_line(
    alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeAlpaca(alpaca_server)
    trade_through(alpaca_server, monkeypatch)
    feeds_answered_by(alpaca_server.url_for("").rstrip("/"))

    def unauthorized(_: Request) -> Response:
        return reply({"code": 40110000, "message": "request is not authorized"}, 401)

    fake.script[("GET", ORDERS)].append(unauthorized)
    time = FakeTime(NOW + timedelta(seconds=5))

    with pytest.raises(typer.Exit) as stopped:
        paper_loop(load_settings(mode="paper"), 4, clock=time.clock, sleep=time.sleep)

    assert stopped.value.exit_code == EXIT_CONFIG
    assert time.now < NOW + timedelta(minutes=1)  # it stopped in its first minute
    # Prefect logs to the same stderr in-process; HYDRA's own word is one line, the last.
    lines = capsys.readouterr().err.strip().splitlines()
    said = [line for line in lines if line.startswith("hydra: ")]
    assert said == lines[-1:] and said[0].startswith("hydra: alpaca recent orders: HTTP 401")
    assert "Alpaca refused the keys: check ALPACA_API_KEY and ALPACA_SECRET_KEY" in said[0]
    assert orders_listed(alpaca_server) == [401]


def api_error(status: int, what: str) -> AlpacaApiError:
    return AlpacaApiError(f"alpaca {what}: HTTP {status} {{}}", status, None, "")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BrokerUnauthorized("alpaca recent orders: HTTP 401 request is not authorized: ..."), EXIT_CONFIG),
        (api_error(403, "account"), EXIT_CONFIG),
        (ConfigError("engine.risk.max_position: too loose"), EXIT_CONFIG),
        (DecisionAhead("cannot decide at 2027-01-01T00:00:00+00:00"), EXIT_CONFIG),
        (WarehouseTooNewError("data/hydra.duckdb", 99, 15), EXIT_WAREHOUSE),
    ],
)
def test_the_fatal_conditions_end_the_loop_with_their_exit_code(error: Exception, code: int) -> None:
    ending = fatal(error)
    assert ending is not None and ending[1] == code


@pytest.mark.parametrize(
    "error",
    [
        api_error(500, "recent orders"),
        api_error(429, "positions"),
        api_error(403, "submit hy-1"),  # a refused order, not refused keys
        BrokerError("alpaca account: ReadTimeout: timed out"),
        WarehouseLockedError("data/hydra.duckdb", 30.0, "held by pid 4242"),
        RuntimeError("a strategy's bug"),
    ],
)
def test_every_other_failure_leaves_the_loop_to_the_next_minute(error: Exception) -> None:
    assert fatal(error) is None
