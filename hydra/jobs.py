"""HYDRA's jobs as plain functions: the CLI and the Prefect flows both call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from hydra.ingestion import ingest
from hydra.settings import HydraSettings
from hydra.sources import FEEDS, FeedRequest, SourceContext, settings_simulator
from warehouse.ingest import IngestionResult


@dataclass(frozen=True)
class SimulatedIngestion:
    start: datetime
    end: datetime
    results: list[IngestionResult]
    regimes: pl.DataFrame  # the simulator's ground truth: ts_event, regime


def default_sim_window(settings: HydraSettings) -> tuple[datetime, datetime]:
    return settings.sim.start, settings.sim.start + timedelta(days=settings.sim.days)


def ingest_simulated(
    context: SourceContext, start: datetime, end: datetime, feeds: Sequence[str] = FEEDS
) -> SimulatedIngestion:
    """The feeds' facts of [start, end) from the simulator, through the real ingestion path (a
    window that holds `sim.start` brings the daily history before it too).

    Run ids are derived from the seed and the window, so loading the same simulated window
    twice rewrites the same rows, ingestion_runs included.
    """
    sim = context.settings.sim
    run_id = f"sim:{sim.seed}:{start.isoformat()}:{end.isoformat()}"
    results = [ingest(context, FeedRequest(feed, now=end, start=start, end=end), run_id) for feed in feeds]
    regimes = settings_simulator(context.settings).regime_path(start, end)
    return SimulatedIngestion(start=start, end=end, results=results, regimes=regimes)
