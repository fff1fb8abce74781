"""Ingestion flows: one per feed (each its own deployment and schedule), and ingest_all.

A feed's run fetches, validates and loads that feed only, so retrying a failed run from the
Prefect UI re-runs just that feed; loads are upserts, so the retry adds exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prefect import Task, flow, get_run_logger
from prefect.flows import Flow
from prefect.runtime import flow_run

from core.config import Mode
from hydra.context import load_context
from hydra.ingestion import ValidatedResult, ingest_slices, record_result
from hydra.jobs import default_sim_window
from hydra.sources import FEEDS, FeedRequest, FeedResult, SourceContext, backfill_slices, in_dependency_order
from tasks.ingest import FeedFailed, fetch, load, publish, validate
from warehouse.ingest import IngestionResult
from warehouse.migrate import migrate


def run_feed(feed: str, start: datetime | None, end: datetime | None, retry_fetches: bool = True) -> dict[str, Any]:
    context = load_context()
    logger = get_run_logger()
    started_at = datetime.now(UTC)
    if context.settings.mode is Mode.SIM and (start is None or end is None):
        start, end = default_sim_window(context.settings)
    migrate(context.warehouse)
    run_id = str(flow_run.get_id() or f"local-{started_at:%Y%m%dT%H%M%S}")
    request = FeedRequest(feed=feed, now=started_at, start=start, end=end)
    delays = list(context.settings.feeds.fetch_retry_delays_s) if retry_fetches else []
    fetch_with_retries = fetch.with_options(retries=len(delays), retry_delay_seconds=delays)
    slices = backfill_slices(context.settings, request)
    if len(slices) > 1:
        outcome = _run_slices(context, slices, run_id, fetch_with_retries)
    else:
        try:
            result = fetch_with_retries(context, request)
        except FeedFailed as failure:
            # Record the failure (and quarantine any malformed payload) before failing the run.
            record_result(context, ValidatedResult(failure.result, {}), run_id, started_at)
            logger.error("feed %s failed: %s", feed, failure.result.error)
            _log_notes(feed, failure.result.notes)
            raise
        outcome = load(context, validate(context, result), run_id, started_at)
    publish(outcome)
    _log_notes(feed, outcome.run.notes)
    if outcome.run.status == "failed":
        logger.error("feed %s failed: %s", feed, outcome.run.error)
        raise RuntimeError(f"feed {feed} failed: {outcome.run.error}")
    if outcome.run.status != "ok":
        logger.warning("feed %s %s: %s", feed, outcome.run.status, outcome.run.error)
    return {
        "feed": feed,
        "status": outcome.run.status,
        "loaded": outcome.rows_loaded,
        "quarantined": outcome.rows_quarantined,
        "error": outcome.run.error,
        "notes": list(outcome.run.notes),
    }


def _run_slices(
    context: SourceContext, slices: list[FeedRequest], run_id: str, fetch_slice: Task[..., FeedResult]
) -> IngestionResult:
    """A backfill fetched, validated and loaded a slice at a time (hydra.ingestion.ingest_slices)."""

    def fetch_one(request: FeedRequest) -> FeedResult:
        try:
            return fetch_slice(context, request)
        except FeedFailed as failure:
            return failure.result

    return ingest_slices(context, slices, run_id, fetch_one)


def _log_notes(feed: str, notes: Iterable[str]) -> None:
    """A backfill that could not get all of its window says so in the flow run's log too."""
    logger = get_run_logger()
    for note in notes:
        logger.warning("%s", note)


FeedFlow = Flow[[datetime | None, datetime | None, bool], dict[str, Any]]


def feed_flow(feed: str) -> FeedFlow:
    def ingest(
        start: datetime | None = None, end: datetime | None = None, retry_fetches: bool = True
    ) -> dict[str, Any]:
        return run_feed(feed, start, end, retry_fetches)

    return flow(name=f"ingest-{feed.replace('_', '-')}", log_prints=True)(ingest)


ingest_bars = feed_flow("bars")
ingest_binance = feed_flow("binance")
ingest_cme = feed_flow("cme")
ingest_metal_premium = feed_flow("metal_premium")
ingest_macro_calendar = feed_flow("macro_calendar")
ingest_github = feed_flow("github")
ingest_narrative = feed_flow("narrative")
ingest_vol_credit = feed_flow("vol_credit")

FEED_FLOWS: dict[str, FeedFlow] = {
    "bars": ingest_bars,
    "binance": ingest_binance,
    "cme": ingest_cme,
    "metal_premium": ingest_metal_premium,
    "macro_calendar": ingest_macro_calendar,
    "github": ingest_github,
    "narrative": ingest_narrative,
    "vol_credit": ingest_vol_credit,
}


@flow(name="ingest-all")
def ingest_all(
    feeds: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    retry_fetches: bool = True,
) -> dict[str, str]:
    """Every feed as a subflow: one failing feed does not stop the others; the run fails at the end if any did.

    A feed that reads what another loads (metal_premium reads vol_credit's USD/CNY) runs after it.
    Without `retry_fetches` a failed fetch is not retried within the run (the paper loop's: the
    feed's next scheduled run retries it)."""
    chosen = feeds or list(FEEDS)
    unknown = sorted(set(chosen) - set(FEEDS))
    if unknown:
        raise ValueError(f"unknown feed(s) {', '.join(unknown)}; feeds are {', '.join(FEEDS)}")
    states = {
        feed: FEED_FLOWS[feed](start, end, retry_fetches, return_state=True) for feed in in_dependency_order(chosen)
    }
    outcome = {feed: state.name or state.type.value for feed, state in states.items()}
    failed = [feed for feed, state in states.items() if state.is_failed() or state.is_crashed()]
    if failed:
        raise RuntimeError(f"feeds failed: {', '.join(failed)}")
    return outcome
