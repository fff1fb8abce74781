"""Prefect tasks of an ingestion run; each is a thin call of hydra.ingestion.

Only the network step retries. Tasks take no cache (their inputs are whole batches, which
Prefect would otherwise hash), and none of their parameters is ever a secret.
"""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from hydra.ingestion import ValidatedResult, record_result, validate_result
from hydra.sources import FeedRequest, FeedResult, SourceContext, fetch_feed
from warehouse.ingest import IngestionResult


class FeedFailed(Exception):
    """Every part of a feed failed: the task fails (and Prefect retries it)."""

    def __init__(self, result: FeedResult) -> None:
        super().__init__(f"feed {result.feed} failed: {result.error}")
        self.result = result


@task(name="fetch", task_run_name="fetch-{request.feed}", timeout_seconds=600, cache_policy=NO_CACHE)
def fetch(context: SourceContext, request: FeedRequest) -> FeedResult:
    result = fetch_feed(context, request)
    if result.status == "failed":
        raise FeedFailed(result)
    return result


@task(name="validate", task_run_name="validate-{result.feed}", cache_policy=NO_CACHE)
def validate(context: SourceContext, result: FeedResult) -> ValidatedResult:
    return validate_result(context, result)


@task(
    name="load", task_run_name="load-{validated.result.feed}", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE
)
def load(context: SourceContext, validated: ValidatedResult, run_id: str, started_at: datetime) -> IngestionResult:
    return record_result(context, validated, run_id, started_at)


@task(name="publish", task_run_name="publish-{outcome.run.feed}", cache_policy=NO_CACHE)
def publish(outcome: IngestionResult) -> None:
    """The run's validation summary as a table artifact on the flow run's page."""
    rows = [
        {
            "table": table,
            "loaded": outcome.rows_loaded.get(table, 0),
            **{k: v for k, v in summary.items() if k != "failed_expectations"},
            "failed_expectations": ", ".join(
                f"{name}: {count}" for name, count in summary["failed_expectations"].items()
            ),
        }
        for table, summary in outcome.run.validation_summary.items()
        if isinstance(summary, dict)
    ]
    create_table_artifact(
        key=f"ingest-{outcome.run.feed.replace('_', '-')}",
        table=rows or [{"table": "-", "loaded": 0}],
        description=(
            f"{outcome.run.feed}: {outcome.run.status}, {outcome.total_loaded} rows loaded, "
            f"{outcome.rows_quarantined} quarantined"
            + (f"; {outcome.run.error}" if outcome.run.error else "")
            + "".join(f"\n- {note}" for note in outcome.run.notes)
        ),
    )
