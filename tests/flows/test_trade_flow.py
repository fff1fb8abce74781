"""The trading flow under a real (temporary) Prefect server, in sim mode on simulated feeds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fake_alpaca import API_KEY, SECRET_KEY, FakeAlpaca, payload, reply, trade_through
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from pytest_httpserver import HTTPServer

from flows.trade import trade
from hydra.context import load_context
from hydra.jobs import ingest_simulated

WAREHOUSE = Path("data/hydra.duckdb")
pytestmark = pytest.mark.usefixtures("prefect_harness")


def query(sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.slow
def test_each_run_decides_once_at_the_newest_stored_minute_and_resumes_the_last() -> None:
    context = load_context()
    start = context.settings.sim.start
    ingest_simulated(context, start, start + timedelta(days=1), feeds=["bars"])

    first = trade("sim")
    assert first["status"] == "decided" and first["cycle"] == 1 and first["run_id"] == "sim-main"
    assert first["at"] == (start + timedelta(days=1)).isoformat()
    # Nothing new was ingested: the same minute is not decided twice.
    assert trade("sim")["status"] == "skipped"

    ingest_simulated(context, start + timedelta(days=1), start + timedelta(days=1, minutes=15), feeds=["bars"])
    second = trade("sim")
    assert second["cycle"] == 2 and second["at"] == (start + timedelta(days=1, minutes=15)).isoformat()
    assert query("SELECT count(*) FROM cycles WHERE run_id = 'sim-main'") == [(2,)]
    assert query("SELECT key FROM engine_state WHERE run_id = 'sim-main' ORDER BY key") == [
        ("engine",),
        ("sim_broker",),
    ]
    log = json.loads(Path("data/trade_logs/sim-main.json").read_text(encoding="utf-8"))
    assert log["run_id"] == "sim-main" and log["overview"]["cycles"] == 2


@pytest.mark.slow
def test_a_failed_cycle_fails_the_run_and_publishes_an_alert() -> None:
    load_context()  # no bars are stored at all
    state = trade("sim", return_state=True)
    assert state.is_failed() and "no minute bars are stored" in str(state.message)

    async def alerts() -> list[Any]:
        async with get_client() as client:
            key = ArtifactFilterKey(any_=["trade-failed-sim"])
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=key))

    artifacts = asyncio.run(alerts())
    assert artifacts and "NoMarketData: no minute bars are stored" in str(artifacts[-1].data)


def test_the_trading_path_never_imports_great_expectations() -> None:
    probe = (
        "import sys, flows.trade, tasks.trade, hydra.live, hydra.trading; "
        "print('great_expectations' in sys.modules, 'quality.validate' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_a_paper_run_trades_through_alpaca_and_records_the_account(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAlpaca(httpserver)
    trade_through(httpserver, monkeypatch)
    context = load_context()
    start = context.settings.sim.start
    ingest_simulated(context, start, start + timedelta(days=1), feeds=["bars"])  # something to decide on

    at = start + timedelta(days=1)
    outcome = trade("paper", at)
    assert outcome["status"] == "decided" and outcome["run_id"] == "paper-main"
    equity = float(payload("account.json")["cash"]) + sum(float(p["market_value"]) for p in fake.positions)
    assert outcome["equity"] == pytest.approx(equity, abs=0.01)
    assert query("SELECT mode, status FROM runs WHERE run_id = 'paper-main'") == [("paper", "running")]
    assert query("SELECT count(*) FROM positions WHERE run_id = 'paper-main'") == [(len(fake.positions),)]
    # The keys went to Alpaca in headers and nowhere else.
    assert all(request.headers["APCA-API-KEY-ID"] == API_KEY for request, _ in httpserver.log)
    stored = query("SELECT config FROM runs WHERE run_id = 'paper-main'")[0][0]
    assert SECRET_KEY not in str(stored) and API_KEY not in str(stored)


@pytest.mark.slow
def test_keys_alpaca_refuses_fail_the_cycle_with_one_line_naming_the_variables(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAlpaca(httpserver)
    for route in [("GET", "/v2/account"), ("GET", "/v2/positions"), ("GET", "/v2/orders"), ("GET", "/v2/clock")]:
        fake.script[route].append(lambda _: reply(payload("error_401_unauthorized.json"), 401))
    trade_through(httpserver, monkeypatch)
    context = load_context()
    start = context.settings.sim.start
    ingest_simulated(context, start, start + timedelta(days=1), feeds=["bars"])

    state = trade("paper", start + timedelta(days=1), return_state=True)

    assert state.is_failed()
    message = str(state.message)
    assert "Alpaca refused the keys: check ALPACA_API_KEY and ALPACA_SECRET_KEY" in message
    assert API_KEY not in message and SECRET_KEY not in message
