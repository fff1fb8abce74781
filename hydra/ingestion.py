"""One ingestion run of one feed: fetch -> validate (Great Expectations) -> record.

The three steps are separate functions because the Prefect flow runs each as its own task
(retries on the network step only); `ingest` composes them for callers without Prefect.
Validation imports Great Expectations lazily: the trading flow never pays for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from adapters.feed import FeedBatch, Rejected
from hydra.sources import FeedRequest, FeedResult, SourceContext, fetch_feed
from warehouse.ingest import IngestionResult, IngestionRun, record_ingestion
from warehouse.load import natural_keys
from warehouse.migrate import migrate


@dataclass(frozen=True)
class ValidatedResult:
    result: FeedResult
    summary: dict[str, Any]


def validate_result(context: SourceContext, result: FeedResult) -> ValidatedResult:
    """Rows that fail the table's expectation suite move to the batch's rejected items."""
    from quality.validate import validate_table

    keys = natural_keys(context.warehouse, result.batch.tables)
    tables = {}
    rejected = list(result.batch.rejected)
    summary: dict[str, Any] = {}
    for table, frame in result.batch.tables.items():
        outcome = validate_table(table, frame, keys[table])
        tables[table] = outcome.passed
        rejected += [Rejected(payload=row.payload, reason=f"{table}: {row.reason}") for row in outcome.rejected]
        summary[table] = outcome.summary
    summary["parse_rejections"] = len(result.batch.rejected)
    checked = replace(result, batch=FeedBatch(result.feed, tables, rejected))
    return ValidatedResult(checked, summary)


def record_result(
    context: SourceContext, validated: ValidatedResult, run_id: str, started_at: datetime
) -> IngestionResult:
    result = validated.result
    now = datetime.now(UTC)
    run = IngestionRun(
        run_id=run_id,
        feed=result.feed,
        started_at=started_at,
        finished_at=now,
        status=result.status,
        window_start=result.window_start,
        window_end=result.window_end,
        error=result.error,
        validation_summary=validated.summary,
    )
    return record_ingestion(context.warehouse, run, result.batch.tables, result.batch.quarantine_frame(run_id, now))


def ingest(context: SourceContext, request: FeedRequest, run_id: str | None = None) -> IngestionResult:
    started_at = datetime.now(UTC)
    migrate(context.warehouse)
    validated = validate_result(context, fetch_feed(context, request))
    return record_result(context, validated, run_id or f"local-{uuid.uuid4().hex[:12]}", started_at)
