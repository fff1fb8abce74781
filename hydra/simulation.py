"""`hydra run` in sim mode: simulated markets, the real decision path, a simulated broker.

The simulator's history (a warm-up the regime needs, then the trading days) goes through
the same ingestion path as real feeds (Great Expectations included) into the warehouse.
Then, every `sim.cycle_minutes`, the cycle makes the same calls as a run of the minutely
trading flow (hydra.live): the simulated broker sees the stored minutes that passed (fills
happen on the bar after a decision), the warehouse is read as it was at that moment, and one
cycle decides, records and submits. A flow run per simulated cycle would cost over a second
each, so the whole simulation is one flow run of plain calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from core.config import Mode
from hydra.jobs import ingest_simulated
from hydra.live import advance_sim_broker, decide, new_sim_run_id, open_job, record_run, write_trade_log
from hydra.sources import SourceContext
from warehouse.read import query_frame

# Calendar rows are published ahead of their events: ingest that far past the window.
CALENDAR_LEAD = timedelta(days=7)
CALENDAR_FEED = "macro_calendar"


@dataclass(frozen=True)
class SimulationResult:
    run_id: str
    trading_start: datetime
    trading_end: datetime
    cycles: int
    overview: dict[str, object]
    orders_by_strategy: pl.DataFrame
    trade_log: Path


def run_simulation(context: SourceContext) -> SimulationResult:
    settings = context.settings
    sim = settings.sim
    history_start = sim.start
    trading_start = history_start + timedelta(days=sim.warmup_days)
    trading_end = trading_start + timedelta(days=sim.days)
    ingest_simulated(context, history_start, trading_end)
    ingest_simulated(context, trading_end, trading_end + CALENDAR_LEAD, feeds=[CALENDAR_FEED])

    run_id = new_sim_run_id(trading_start)
    label = f"sim seed {sim.seed}"
    started_at = datetime.now(UTC)
    window = (trading_start, trading_end)
    job = open_job(context, Mode.SIM, run_id, label)
    record_run(context, run_id, Mode.SIM, label, status="running", window=window, started_at=started_at)
    cycles = 0
    now = trading_start
    while now < trading_end:
        now += timedelta(minutes=sim.cycle_minutes)
        with context.warehouse.held():
            advance_sim_broker(job, now)
            decide(job, now, recorded_at=now)
        cycles += 1
    record_run(
        context,
        run_id,
        Mode.SIM,
        label,
        status="completed",
        window=window,
        started_at=started_at,
        ended_at=datetime.now(UTC),
    )
    with context.warehouse.connect() as con:
        overview = query_frame(con, "report/run_overview", {"run_id": run_id}).row(0, named=True)
        by_strategy = query_frame(con, "report/orders_by_strategy", {"run_id": run_id})
    log = write_trade_log(context, run_id)
    return SimulationResult(run_id, trading_start, trading_end, cycles, overview, by_strategy, log)
