"""prefect.yaml is read by Prefect's own model, and every deployment points at a real flow."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import Flow

from adapters.config import Schedules
from hydra.sources import FEEDS

ROOT = Path(__file__).resolve().parents[1]


def deployments() -> list[dict[str, object]]:
    model = PrefectYamlModel.model_validate(yaml.safe_load((ROOT / "prefect.yaml").read_text()))
    return [deployment.model_dump() for deployment in model.deployments]


def test_every_entrypoint_is_a_flow() -> None:
    for deployment in deployments():
        path, _, name = str(deployment["entrypoint"]).partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, name), Flow), deployment["name"]


def test_every_feed_has_a_deployment_on_its_configured_schedule_one_run_at_a_time() -> None:
    by_name = {str(d["name"]): d for d in deployments()}
    for feed in FEEDS:
        deployment = by_name[f"ingest-{feed.replace('_', '-')}"]
        [schedule] = deployment["schedules"]  # type: ignore[misc]
        assert schedule["interval"] == timedelta(seconds=getattr(Schedules(), feed)), feed
        assert deployment["concurrency_limit"] == {
            "limit": 1,
            "collision_strategy": "CANCEL_NEW",
            "grace_period_seconds": None,
        }


def test_the_trading_flow_runs_every_minute_and_an_overlapping_run_is_cancelled() -> None:
    [deployment] = [d for d in deployments() if d["name"] == "trade"]
    [schedule] = deployment["schedules"]  # type: ignore[misc]
    assert schedule["interval"] == timedelta(minutes=1)
    assert deployment["concurrency_limit"] == {
        "limit": 1,
        "collision_strategy": "CANCEL_NEW",
        "grace_period_seconds": None,
    }
