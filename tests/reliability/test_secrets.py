"""Secrets never leave the environment: after paper cycles with recognisable fake keys, one of
them failing on a broker error that quotes the request's headers back, no log line, artifact,
warehouse byte, alert, trade log or report holds either key."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_alpaca import FakeAlpaca, reply, trade_through
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from flows.report import daily_report
from flows.trade import trade
from hydra.context import load_context
from hydra.jobs import ingest_simulated

pytestmark = pytest.mark.usefixtures("prefect_harness")
API_KEY = "PKCANARY7Q2M9XLEAKTEST"
SECRET_KEY = "skCANARY8vN3wQpLeakTestSecret"


def echo_headers(request: Request) -> Response:
    """A broker error whose message quotes the request, keys included, as some gateways do."""
    return reply({"code": 50010000, "message": f"upstream failed for {dict(request.headers)}"}, 500)


@pytest.mark.slow
def test_no_key_appears_anywhere_after_paper_cycles(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeAlpaca(httpserver)
    trade_through(httpserver, monkeypatch, API_KEY, SECRET_KEY)
    context = load_context()
    start = context.settings.sim.start
    ingest_simulated(context, start, start + timedelta(days=1), feeds=["bars"])
    at = start + timedelta(days=1)

    caplog.set_level(logging.DEBUG)
    good = trade("paper", at, return_state=True)
    fake.script[("GET", "/v2/account")].append(echo_headers)
    failed = trade("paper", at + timedelta(minutes=1), return_state=True)
    assert good.is_completed() and failed.is_failed()
    daily_report("paper-main")

    async def server_side() -> str:
        async with get_client() as client:
            logs = []
            for state in (good, failed):
                run_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
                logs += [entry.message for entry in await client.read_logs(log_filter=run_filter)]
            artifacts = [json.dumps(a.data, default=str) for a in await client.read_artifacts()]
            return "\n".join([*logs, *artifacts])

    places: dict[str, Any] = {
        "captured logs": caplog.text,
        "flow run logs and artifacts": asyncio.run(server_side()),
        "flow failure message": str(failed.message),
        "warehouse file": Path("data/hydra.duckdb").read_bytes().decode("latin-1"),
        "trade logs and reports": "\n".join(
            path.read_text(encoding="utf-8", errors="replace")
            for path in Path("data").rglob("*")
            if path.is_file() and path.suffix in {".json", ".html"}
        ),
    }
    with context.warehouse.connect(read_only=True) as con:
        places["alerts and runs"] = json.dumps(
            con.execute("SELECT * FROM alerts").fetchall() + con.execute("SELECT config FROM runs").fetchall(),
            default=str,
        )
    assert "upstream failed" in places["flow failure message"]  # the broker's error did come through
    for place, text in places.items():
        for secret in (API_KEY, SECRET_KEY):
            assert secret not in text, f"{secret[:6]}... found in {place}"
