"""`hydra run` in sim mode: simulated markets, the real decision path, a simulated broker.

The simulator's history (a warm-up the regime needs, then the trading days) goes through
the same ingestion path as real feeds (Great Expectations included) into the warehouse.
Then, every `sim.cycle_minutes`, the simulated broker sees the minutes that passed (fills
happen on the bar after a decision), the warehouse is read as it was at that moment, and
one `TradingSession.step` decides, submits and records, exactly as the minutely flow does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from adapters.sim_broker import Bar, SimBroker, us_equity_hours
from hydra.decide import load_snapshot
from hydra.jobs import ingest_simulated
from hydra.sources import SourceContext, simulator
from hydra.trading import TradingSession
from strategies import REGISTRY
from warehouse.read import query_frame
from warehouse.sqlfiles import read_sql

MINUTE = timedelta(minutes=1)
# Calendar rows are published ahead of their events: ingest that far past the window.
CALENDAR_LEAD = timedelta(days=7)


@dataclass(frozen=True)
class SimulationResult:
    run_id: str
    trading_start: datetime
    trading_end: datetime
    cycles: int
    overview: dict[str, object]
    orders_by_strategy: pl.DataFrame


def run_simulation(context: SourceContext) -> SimulationResult:
    settings = context.settings
    sim = settings.sim
    history_start = sim.start
    trading_start = history_start + timedelta(days=sim.warmup_days)
    trading_end = trading_start + timedelta(days=sim.days)
    ingest_simulated(context, history_start, trading_end + CALENDAR_LEAD)

    run_id = f"sim-{trading_start:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    started_at = datetime.now(UTC)
    _record_run(context, run_id, trading_start, trading_end, started_at, None, "running")
    broker = SimBroker(starting_cash=sim.starting_cash, slippage_bps=sim.slippage_bps, fee_bps=sim.fee_bps)
    session = TradingSession(
        warehouse=context.warehouse,
        run_id=run_id,
        config=settings.engine,
        broker=broker,
        strategies=REGISTRY,
        is_tradable=us_equity_hours,
    )
    bars = simulator(sim.seed, sim.start, settings.engine.watchlist).generate(trading_start, trading_end)["bars"]
    minutes = _MinuteBars(bars)
    cycles = 0
    now = trading_start
    while now < trading_end:
        now += timedelta(minutes=sim.cycle_minutes)
        for minute, bar_map in minutes.until(now):
            broker.on_bar(bar_map, minute + MINUTE)
        session.step_and_record(load_snapshot(context.warehouse, settings.engine, now), now, recorded_at=now)
        cycles += 1
    _record_run(context, run_id, trading_start, trading_end, started_at, datetime.now(UTC), "completed")
    with context.warehouse.connect() as con:
        overview = query_frame(con, "report/run_overview", {"run_id": run_id}).row(0, named=True)
        by_strategy = query_frame(con, "report/orders_by_strategy", {"run_id": run_id})
    return SimulationResult(run_id, trading_start, trading_end, cycles, overview, by_strategy)


class _MinuteBars:
    """The simulated minute bars, handed to the broker minute by minute in time order."""

    def __init__(self, bars: pl.DataFrame) -> None:
        minute_bars = bars.filter(pl.col("timeframe") == "1Min").sort("ts_event", "symbol")
        self._times = minute_bars.get_column("ts_event").to_list()
        self._symbols = minute_bars.get_column("symbol").to_list()
        self._values = minute_bars.select("open", "high", "low", "close", "volume").to_numpy()
        self._next = 0

    def until(self, end: datetime) -> Iterator[tuple[datetime, dict[str, Bar]]]:
        """Each minute whose bars closed by `end` and were not handed out yet."""
        while self._next < len(self._times) and self._times[self._next] + MINUTE <= end:
            minute = self._times[self._next]
            bar_map = {}
            while self._next < len(self._times) and self._times[self._next] == minute:
                open_, high, low, close, volume = (float(v) for v in self._values[self._next])
                bar_map[self._symbols[self._next]] = Bar(minute, open_, high, low, close, volume)
                self._next += 1
            yield minute, bar_map


def _record_run(
    context: SourceContext,
    run_id: str,
    window_start: datetime,
    window_end: datetime,
    started_at: datetime,
    ended_at: datetime | None,
    status: str,
) -> None:
    settings = context.settings
    with context.warehouse.connect() as con:
        con.execute(
            read_sql("record/run"),
            {
                "run_id": run_id,
                "mode": settings.mode.value,
                "label": f"sim seed {settings.sim.seed}",
                "profile": settings.risk.profile.value,
                "config": json.dumps(json.loads(settings.model_dump_json())),
                "window_start": window_start,
                "window_end": window_end,
                "started_at": started_at,
                "ended_at": ended_at,
                "status": status,
            },
        )
