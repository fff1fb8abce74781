"""One ingestion run of one feed: fetch -> validate (Great Expectations) -> record.

The three steps are separate functions because the Prefect flow runs each as its own task
(retries on the network step only); `ingest` composes them for callers without Prefect.
Validation imports Great Expectations lazily: the trading flow never pays for it.
A source too big for memory (a user's file) is ingested chunk by chunk (`ingest_chunks`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.feed import FeedBatch, Rejected
from hydra.sources import FeedRequest, FeedResult, SourceContext, fetch_feed
from warehouse.ingest import IngestionResult, IngestionRun, record_chunk, record_ingestion, record_run
from warehouse.load import natural_keys
from warehouse.migrate import migrate

if TYPE_CHECKING:
    from quality.validate import ChunkedValidation, TableValidation


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
        rejected += _rejections(outcome)
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


def ingest_chunks(context: SourceContext, feed: str, chunks: Iterable[FeedBatch], run_id: str) -> IngestionResult:
    """One ingestion run of a source read in chunks: memory stays bounded by a chunk.

    Each chunk is validated against the chunks before it (quality.validate.ChunkedValidation)
    and recorded in a transaction of its own; the run's ingestion_runs row, with the totals and
    the validation summary of the whole run, follows the last chunk.
    """
    from quality.validate import ChunkedValidation

    started_at = datetime.now(UTC)
    validations: dict[str, ChunkedValidation] = {}
    loaded: dict[str, int] = {}
    quarantined = parse_rejections = 0
    for chunk in chunks:
        parse_rejections += len(chunk.rejected)
        rejected = list(chunk.rejected)
        tables = {}
        for table, frame in chunk.tables.items():
            if table not in validations:
                validations[table] = ChunkedValidation(table, natural_keys(context.warehouse, [table])[table])
            outcome = validations[table].validate(frame)
            tables[table] = outcome.passed
            rejected += _rejections(outcome)
        checked = FeedBatch(feed, tables, rejected)
        written, quarantine = record_chunk(
            context.warehouse, tables, checked.quarantine_frame(run_id, datetime.now(UTC))
        )
        quarantined += quarantine
        for table, count in written.items():
            loaded[table] = loaded.get(table, 0) + count
    summary: dict[str, Any] = {table: validation.summary for table, validation in validations.items()}
    summary["parse_rejections"] = parse_rejections
    run = IngestionRun(run_id, feed, started_at, datetime.now(UTC), "ok", validation_summary=summary)
    return record_run(context.warehouse, run, loaded, quarantined)


def _rejections(outcome: TableValidation) -> list[Rejected]:
    """The rows that failed validation as quarantine items, each with the expectations it failed."""
    return [Rejected.of(row.row, f"{outcome.table}: {row.reason}") for row in outcome.rejected]
