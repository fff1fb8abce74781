"""`hydra run` in sim mode: simulated markets, the real decision path, a simulated broker.

The simulator's history (the daily bars before `sim.start`, then `sim.warmup_sessions` NYSE
sessions of minute history the regime needs, then the trading days) goes through the same
ingestion path as real feeds (Great Expectations included) into the warehouse. Then, every
`sim.cycle_minutes`, the cycle makes the same calls as a run of the minutely trading flow
(hydra.live): the simulated broker sees the stored minutes that passed (fills happen on the bar
after a decision), the warehouse is read as it was at that moment, and one cycle decides,
records and submits. A flow run per simulated cycle would cost over a second each, so the whole
simulation is one flow run of plain calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from core.calendar import market_calendar
from core.config import Mode
from hydra.backtesting import ReplayResult, replay
from hydra.jobs import ingest_simulated
from hydra.live import new_sim_run_id
from hydra.settings import SimConfig
from hydra.sources import SourceContext

# Calendar rows are published ahead of their events: ingest that far past the window.
CALENDAR_LEAD = timedelta(days=7)
CALENDAR_FEED = "macro_calendar"


def trading_start(sim: SimConfig) -> datetime:
    """When trading starts: the midnight (UTC) that begins the day of the first NYSE session
    after `sim.warmup_sessions` whole sessions of history from `sim.start`, so holidays and
    weekends lengthen the warm-up instead of thinning it."""
    sessions = market_calendar().equities
    first_whole = sessions.closed_by(sim.start) + int(sessions.is_open(sim.start))
    day = sessions.day_of(first_whole + sim.warmup_sessions)
    return max(sim.start, datetime.combine(day, time(0), tzinfo=UTC))


def run_simulation(context: SourceContext) -> ReplayResult:
    settings = context.settings
    sim = settings.sim
    start = trading_start(sim)
    trading_end = start + timedelta(days=sim.days)
    ingest_simulated(context, sim.start, trading_end)
    ingest_simulated(context, trading_end, trading_end + CALENDAR_LEAD, feeds=[CALENDAR_FEED])
    run_id = new_sim_run_id(start)
    return replay(context, Mode.SIM, run_id, f"sim seed {sim.seed}", start, trading_end)
