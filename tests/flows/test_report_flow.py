"""The daily report flow publishes the newest run's tearsheet to the Prefect UI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.report import daily_report
from hydra.context import load_context
from hydra.simulation import run_simulation
from warehouse.migrate import migrate

pytestmark = pytest.mark.usefixtures("prefect_harness")


def artifacts(key: str) -> list[Any]:
    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    return asyncio.run(read())


def test_with_no_run_yet_the_report_is_skipped_with_the_reason() -> None:
    migrate(load_context().warehouse)
    assert daily_report() == {"status": "skipped", "reason": "the warehouse holds no runs yet"}


@pytest.mark.slow
def test_the_report_of_the_newest_run_is_published_as_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"WARMUP_SESSIONS": "1", "DAYS": "0.25", "CYCLE_MINUTES": "60"}.items():
        monkeypatch.setenv(f"HYDRA_SIM__{name}", value)
    run = run_simulation(load_context())
    outcome = daily_report()
    assert outcome["status"] == "built" and outcome["run_id"] == run.run_id
    [summary] = artifacts("report-summary")[-1:]
    assert run.run_id in str(summary.data)
    [link] = artifacts("report-html")[-1:]
    assert run.run_id in str(link.data) and ".html" in str(link.data)
    assert artifacts("report-strategies")
