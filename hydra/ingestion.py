"""One ingestion run of one feed: fetch -> validate (Great Expectations) -> record.

The three steps are separate functions because the Prefect flow runs each as its own task
(retries on the network step only); `ingest` composes them for callers without Prefect.
Validation imports Great Expectations lazily: the trading flow never pays for it.
A source too big for memory (a user's file) is ingested chunk by chunk (`ingest_chunks`), a
long backfill slice by slice (`ingest_slices`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.feed import FeedBatch, Rejected
from adapters.window import Window
from hydra.sources import STATUS_ORDER, FeedRequest, FeedResult, SourceContext, fetch_feed
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
        notes=result.notes,
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
    started_at = datetime.now(UTC)
    recorder = _ChunkRecorder(context, feed, run_id)
    for chunk in chunks:
        recorder.record(chunk)
    return recorder.finish(IngestionRun(run_id, feed, started_at, datetime.now(UTC), "ok"))


def ingest_slices(
    context: SourceContext,
    requests: Sequence[FeedRequest],
    run_id: str,
    fetch: Callable[[FeedRequest], FeedResult],
) -> IngestionResult:
    """One ingestion run of a backfill fetched a slice at a time (hydra.sources.backfill_slices).

    Each slice is fetched (by `fetch`, which returns a failed result rather than raising),
    then validated against the slices before it and recorded before the next is fetched, so
    memory and a failure's cost stay bounded by a slice. The run's row follows the last
    slice: the whole window, the totals, the worst status, and every slice's errors and
    notes. A slice whose every part failed ends the run there, `failed`, with the slices
    before it kept and the rest of the window named as not loaded.
    """
    started_at = datetime.now(UTC)
    slices = [window for window in (request.window for request in requests) if window is not None]
    if not slices or len(slices) != len(requests):
        raise ValueError("ingest_slices takes the slices of a backfill window")
    whole = Window(slices[0].start, slices[-1].end)
    recorder = _ChunkRecorder(context, requests[0].feed, run_id)
    status = "ok"
    errors: list[str] = []
    notes: list[str] = []
    for request, window in zip(requests, slices, strict=True):
        result = fetch(request)
        notes += result.notes
        errors += [f"{window}: {error}" for error in result.errors]
        status = max(status, result.status, key=STATUS_ORDER.__getitem__)
        recorder.record(result.batch)
        if result.status == "failed":
            errors.append(f"{Window(window.start, whole.end)} not loaded")
            break
    run = IngestionRun(
        run_id,
        requests[0].feed,
        started_at,
        datetime.now(UTC),
        status,
        window_start=whole.start,
        window_end=whole.end,
        error="; ".join(errors) or None,
        notes=tuple(notes),
    )
    return recorder.finish(run)


class _ChunkRecorder:
    """Validates each chunk of one run against the chunks before it and records it at once."""

    def __init__(self, context: SourceContext, feed: str, run_id: str) -> None:
        self.context, self.feed, self.run_id = context, feed, run_id
        self.validations: dict[str, ChunkedValidation] = {}
        self.loaded: dict[str, int] = {}
        self.quarantined = 0
        self.parse_rejections = 0

    def record(self, chunk: FeedBatch) -> None:
        from quality.validate import ChunkedValidation

        self.parse_rejections += len(chunk.rejected)
        rejected = list(chunk.rejected)
        tables = {}
        for table, frame in chunk.tables.items():
            if table not in self.validations:
                keys = natural_keys(self.context.warehouse, [table])[table]
                self.validations[table] = ChunkedValidation(table, keys)
            outcome = self.validations[table].validate(frame)
            tables[table] = outcome.passed
            rejected += _rejections(outcome)
        checked = FeedBatch(self.feed, tables, rejected)
        quarantine = checked.quarantine_frame(self.run_id, datetime.now(UTC))
        written, quarantined = record_chunk(self.context.warehouse, tables, quarantine)
        self.quarantined += quarantined
        for table, count in written.items():
            self.loaded[table] = self.loaded.get(table, 0) + count

    def finish(self, run: IngestionRun) -> IngestionResult:
        """Records the run's row, with the validation summary of all its chunks."""
        summary: dict[str, Any] = {table: validation.summary for table, validation in self.validations.items()}
        summary["parse_rejections"] = self.parse_rejections
        return record_run(
            self.context.warehouse, replace(run, validation_summary=summary), self.loaded, self.quarantined
        )


def _rejections(outcome: TableValidation) -> list[Rejected]:
    """The rows that failed validation as quarantine items, each with the expectations it failed."""
    return [Rejected.of(row.row, f"{outcome.table}: {row.reason}") for row in outcome.rejected]
