"""A soak of the full decision path (five strategies, regime, risk, positions, simulated broker,
recording), checking the invariants after every cycle: the account adds up, no approved entry
exceeds its limits, a tripped kill switch holds for the rest of its day, memory stays flat; and
at the end, that no strategy held one view twice (sql/checks/views_entered_twice.sql) and that
the trades' P&L reconciles to the change in equity (sql/checks/pnl_not_reconciled.sql).

The default suite runs HYDRA_SOAK_CYCLES (300) cycles; `make soak` runs 20,000.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.simulator import MarketSimulator
from core.config import Mode
from core.types import TradingState
from hydra.context import load_context
from hydra.live import advance_sim_broker, decide, open_job, preload
from warehouse.load import upsert
from warehouse.migrate import migrate
from warehouse.sqlfiles import read_sql

CYCLES = int(os.environ.get("HYDRA_SOAK_CYCLES", "300"))
CYCLE = timedelta(minutes=5)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * PAGE_SIZE / 2**20


@pytest.mark.slow
def test_every_cycle_of_a_long_run_keeps_the_invariants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "5")
    monkeypatch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "5")
    context = load_context()
    migrate(context.warehouse)
    history = context.settings.sim.start
    start = history + timedelta(days=7)
    end = start + CYCLE * CYCLES
    simulator = MarketSimulator(seed=11, epoch=history, watchlist=context.settings.engine.watchlist)
    day = timedelta(days=1)
    moment = history
    while moment < end + day:  # a day at a time keeps the generated frames small
        upsert(context.warehouse, simulator.generate(moment, moment + day))
        moment += day

    job = open_job(context, Mode.BACKTEST, "soak")
    broker = job.sim_broker
    assert broker is not None
    limits = context.settings.risk.limits
    halted_day = None
    resident: list[float] = []
    entries = 0
    now = start
    for cycle in range(CYCLES):
        now += CYCLE
        if job.history is None or cycle % 288 == 0:
            preload(job, now, now + day)
        with context.warehouse.held():
            advance_sim_broker(job, now)
            record = decide(job, now, recorded_at=now)
        result = record.result

        account = broker.account()
        marked = sum(position.market_value for position in broker.positions())
        assert account.cash + marked == pytest.approx(account.equity, abs=1e-6), f"cycle {cycle}: books do not add up"
        for decision in result.decisions:
            if decision.approved:
                assert decision.notional <= limits.max_position * result.equity + 1e-6, f"cycle {cycle}: {decision}"
        trading_day = result.now.date()
        if result.trading_state is TradingState.HALTED:
            halted_day = halted_day or trading_day
        if halted_day == trading_day:
            assert result.entries == (), f"cycle {cycle}: an entry while the kill switch holds"
        elif halted_day is not None and trading_day > halted_day:
            halted_day = None
        entries += len(result.entries)
        if cycle % 50 == 0:
            resident.append(resident_mb())

    assert entries > 0, "a soak that never trades proves nothing"
    with context.warehouse.connect(read_only=True) as con:
        assert con.execute(read_sql("checks/views_entered_twice"), {"run_id": job.run_id}).fetchall() == []
        assert con.execute(read_sql("checks/pnl_not_reconciled"), {"run_id": job.run_id}).fetchall() == []
    # After the first tenth (caches, the regime fit), resident memory must not keep climbing.
    settled = resident[len(resident) // 10 :]
    assert max(settled) - settled[0] < 150, resident
