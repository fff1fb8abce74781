"""A sim trading cycle as the trading flow's tasks run it (tasks/trade.py: reconcile, then
decide), on a job opened fresh from the warehouse: what the kill tests drive, in the test
process or in a child one."""

from __future__ import annotations

from datetime import datetime

from core.config import Mode
from hydra.live import TradingJob, adopt_unrecorded_orders, advance_sim_broker, decide, open_job
from hydra.recording import CycleRecord
from hydra.sources import SourceContext

RUN = "sim-killed"


def sim_cycle(context: SourceContext, now: datetime) -> tuple[TradingJob, CycleRecord]:
    job = open_job(context, Mode.SIM, RUN)
    with context.warehouse.held():
        advance_sim_broker(job, now)
        adopt_unrecorded_orders(job, now, now)
    with context.warehouse.held():
        return job, decide(job, now, now)
