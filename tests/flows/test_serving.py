"""`hydra serve` serves exactly the deployments prefect.yaml describes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from hydra.serving import deployments_of, runner_deployments

pytestmark = pytest.mark.usefixtures("prefect_harness")
HYDRA = str(Path(sys.executable).with_name("hydra"))


def test_every_prefect_yaml_entry_becomes_a_served_deployment_with_its_schedule_and_limit() -> None:
    served = deployments_of()
    runners = {runner.name: runner for runner in runner_deployments(served)}
    assert set(runners) == {deployment.name for deployment in served}
    trade = runners["trade"]
    assert trade.schedules[0].schedule.interval == timedelta(minutes=1)
    assert trade.concurrency_limit == 1 and str(trade.concurrency_options.collision_strategy.value) == "CANCEL_NEW"
    assert runners["report"].schedules[0].schedule.cron == "15 21 * * 1-5"
    assert runners["backtest-sweep"].schedules == []


@pytest.mark.slow
def test_hydra_serve_registers_every_deployment_with_the_server() -> None:
    names = {deployment.name for deployment in deployments_of()}
    environment = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    server = subprocess.Popen([HYDRA, "serve"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    async def registered() -> set[str]:
        async with get_client() as client:
            return {deployment.name for deployment in await client.read_deployments()}

    try:
        deadline = time.monotonic() + 120
        while not names <= asyncio.run(registered()) and time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            time.sleep(1)
        assert names <= asyncio.run(registered())
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
