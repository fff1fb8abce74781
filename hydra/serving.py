"""`hydra serve`: every deployment of prefect.yaml served from one process.

prefect.yaml stays the one description of HYDRA's deployments (names, entrypoints, schedules,
concurrency): `prefect deploy --all` applies it for workers, and this module turns the same
entries into served deployments, so the two ways of running HYDRA cannot drift apart. Served
flow runs execute in subprocesses; each loads its settings and opens the warehouse itself.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


@dataclass(frozen=True)
class ServedDeployment:
    name: str
    entrypoint: str  # 'flows/ingest.py:ingest_bars'
    description: str
    tags: tuple[str, ...]
    interval: timedelta | None
    cron: str | None
    timezone: str | None
    concurrency: dict[str, Any] | None


def deployments_of(path: Path = PREFECT_YAML) -> list[ServedDeployment]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    served = []
    for entry in document["deployments"]:
        [schedule] = entry.get("schedules") or [{}]
        interval = schedule.get("interval")
        served.append(
            ServedDeployment(
                name=entry["name"],
                entrypoint=entry["entrypoint"],
                description=" ".join(str(entry.get("description", "")).split()),
                tags=tuple(entry.get("tags", ())),
                interval=None if interval is None else timedelta(seconds=interval),
                cron=schedule.get("cron"),
                timezone=schedule.get("timezone"),
                concurrency=entry.get("concurrency_limit"),
            )
        )
    return served


def runner_deployments(served: list[ServedDeployment]) -> list[Any]:
    """Prefect's RunnerDeployments for `serve`, one per entry."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.client.schemas.schedules import CronSchedule

    runners = []
    for deployment in served:
        path, _, name = deployment.entrypoint.partition(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        limit = deployment.concurrency
        runners.append(
            flow.to_deployment(
                name=deployment.name,
                interval=deployment.interval,
                schedule=CronSchedule(cron=deployment.cron, timezone=deployment.timezone) if deployment.cron else None,
                concurrency_limit=None
                if limit is None
                else ConcurrencyLimitConfig(
                    limit=limit["limit"], collision_strategy=ConcurrencyLimitStrategy(limit["collision_strategy"])
                ),
                description=deployment.description,
                tags=list(deployment.tags),
            )
        )
    return runners


def serve_all(limit: int | None = None) -> None:
    """Serve every deployment until interrupted; `limit` caps the flow runs executed at once."""
    from prefect import serve

    serve(*runner_deployments(deployments_of()), limit=limit)
