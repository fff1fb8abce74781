"""The trading flow and the world's clock: no decision in the future, a session already decided
ahead of the clock is an alerted error with a way out, a minute already decided is one quiet line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from fake_alpaca import NOW, FakeAlpaca, trade_through
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from core.codec import encode
from core.pipeline import EngineState
from flows.trade import trade
from hydra.cli import app
from hydra.context import load_context
from hydra.recording import ENGINE_STATE_KEY, store_value
from warehouse.migrate import migrate

WAREHOUSE = Path("data/hydra.duckdb")
HYDRA = str(Path(sys.executable).with_name("hydra"))


def query(sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.slow
def test_a_decision_time_after_the_wall_clock_is_refused_in_one_line(alpaca_server: HTTPServer) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
        "ALPACA_API_KEY": "PKPAPER4H7Q2M9XKEYID",
        "ALPACA_SECRET_KEY": "sk-paper-8vN3wQpL1rT6yU0iO7aSecret",
        "HYDRA_FEEDS__ALPACA_TRADING__BASE_URL": alpaca_server.url_for("").rstrip("/"),
    }
    ahead = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M")
    done = subprocess.run(
        [HYDRA, "trade", "--once", "--mode", "paper", "--at", ahead],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    said = done.stderr.strip().splitlines()
    assert said[0].startswith(f"hydra: cannot decide at {ahead}") and "after the wall clock" in said[0]
    assert query("SELECT count(*) FROM cycles") == [(0,)]
    assert not alpaca_server.log  # refused before anything was asked of the broker


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_session_decided_ahead_of_the_clock_is_an_alerted_error_until_its_clock_is_reset(
    alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeAlpaca(alpaca_server)
    trade_through(alpaca_server, monkeypatch)
    context = load_context()
    migrate(context.warehouse)
    assert trade("paper", NOW)["status"] == "decided"
    # What `hydra trade --once --at 2099-01-01T00:00` left before such times were refused.
    poisoned = EngineState(last_cycle_at=datetime(2099, 1, 1, tzinfo=UTC))
    store_value(context.warehouse, "paper-main", ENGINE_STATE_KEY, encode(poisoned), NOW)

    state = trade("paper", NOW + timedelta(minutes=1), return_state=True)
    assert state.is_failed() and "last decided at 2099-01-01T00:00:00+00:00" in str(state.message)
    (alert,) = query("SELECT kind, message FROM alerts WHERE kind = 'cycle_failed'")
    assert "SessionAhead" in str(alert[1]) and "hydra trade --reset-clock" in str(alert[1])

    reset = CliRunner().invoke(app, ["trade", "--reset-clock", "--mode", "paper"])
    assert reset.exit_code == 0 and "clock set back from 2099-01-01T00:00:00+00:00" in reset.output
    assert trade("paper", NOW + timedelta(minutes=2))["status"] == "decided"
    assert query("SELECT ts_event FROM cycles WHERE run_id = 'paper-main' ORDER BY ts_event") == [
        (NOW,),
        (NOW + timedelta(minutes=2),),
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_minute_already_decided_is_one_info_line_without_a_traceback(
    alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    FakeAlpaca(alpaca_server)
    trade_through(alpaca_server, monkeypatch)
    assert trade("paper", NOW)["status"] == "decided"

    caplog.set_level(logging.INFO)
    caplog.clear()
    again = trade("paper", NOW)
    assert again["status"] == "skipped" and "already decided at" in again["reason"]
    loud = [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]
    assert loud == []
    assert any("already decided at" in record.getMessage() for record in caplog.records)
