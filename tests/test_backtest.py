"""The backtest replays history through the live path, seeing each fact only once it was known."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from polars.testing import assert_frame_equal

from adapters.simulator import MarketSimulator
from core.calendar import Timeframe
from core.config import EngineConfig
from hydra.backtesting import NoHistory, cycle_times, run_backtest
from hydra.context import load_context, market_calendar
from hydra.decide import load_history, load_snapshot
from hydra.jobs import ingest_simulated
from hydra.sources import SourceContext
from warehouse import Warehouse
from warehouse.ingest import IngestionRun, record_ingestion
from warehouse.load import upsert
from warehouse.migrate import migrate
from warehouse.sqlfiles import read_sql

# What a decision is: the order it sends, and the risk manager's verdict on every proposal.
ORDER_DECISION = (
    "SELECT client_order_id, symbol, side, qty, order_type, limit_price, decision_price, strategy, intent, reason "
    "FROM orders WHERE run_id = $run_id AND ts_event <= $cutoff ORDER BY client_order_id"
)
RISK_DECISION = (
    "SELECT proposal_id, approved, qty, reasons FROM risk_decisions "
    "WHERE run_id = $run_id AND ts_event <= $cutoff ORDER BY proposal_id"
)


def decisions(context: SourceContext, run_id: str, cutoff: datetime) -> tuple[list[Any], list[Any]]:
    with context.warehouse.connect(read_only=True) as con:
        params = {"run_id": run_id, "cutoff": cutoff}
        return con.execute(ORDER_DECISION, params).fetchall(), con.execute(RISK_DECISION, params).fetchall()


def test_cycle_times_step_through_the_window_after_its_start() -> None:
    start = datetime.fromisoformat("2026-03-09T14:30:00+00:00")
    sessions = market_calendar().equities
    assert cycle_times(start, start + timedelta(hours=1), 15, Timeframe.MIN_1, sessions) == [
        start + timedelta(minutes=m) for m in (15, 30, 45, 60)
    ]
    assert cycle_times(start, start + timedelta(minutes=14), 15, Timeframe.MIN_1, sessions) == []
    # A cycle never comes more often than the bars: 30-minute bars are decided every 30 minutes.
    assert cycle_times(start, start + timedelta(hours=1), 1, Timeframe.MIN_30, sessions) == [
        start + timedelta(minutes=30),
        start + timedelta(hours=1),
    ]


def test_daily_bars_are_decided_at_each_session_open_holidays_skipped() -> None:
    start = datetime.fromisoformat("2026-07-01T00:00:00+00:00")
    times = cycle_times(start, start + timedelta(days=7), 15, Timeframe.DAY_1, market_calendar().equities)
    # 3 July 2026 is Independence Day observed; the sessions open at 09:30 New York (13:30 UTC).
    assert [t.isoformat() for t in times] == [f"2026-07-{day:02d}T13:30:00+00:00" for day in (1, 2, 6, 7)]


def test_a_window_without_history_is_a_clear_error() -> None:
    context = load_context()
    migrate(context.warehouse)
    start = datetime.fromisoformat("2026-03-09T14:30:00+00:00")
    with pytest.raises(NoHistory, match="no 1Min bars are stored between"):
        run_backtest(context, start, start + timedelta(hours=1))


def test_a_replay_cut_short_ends_its_run_aborted_not_running() -> None:
    """Issue 15, defect 1: a replay that stopped on an error left its run `running` for ever."""
    context = load_context()
    start = context.settings.sim.start + timedelta(days=7)
    ingest_simulated(context, start, start + timedelta(hours=3), feeds=["bars"])

    def interrupt(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_backtest(context, start, start + timedelta(hours=3), progress=interrupt)
    with context.warehouse.connect(read_only=True) as con:
        rows = con.execute("SELECT status, ended_at IS NOT NULL FROM runs WHERE mode = 'backtest'").fetchall()
    assert rows == [("aborted", True)]


@pytest.mark.slow
def test_changing_only_what_happened_after_a_moment_changes_no_decision_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "4")
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "30")
    context = load_context()
    start = context.settings.sim.start + timedelta(days=7)  # a week of history first
    end = start + timedelta(days=1)
    ingest_simulated(context, context.settings.sim.start, end)
    cutoff = start + timedelta(hours=16)

    before = run_backtest(context, start, end)
    orders, verdicts = decisions(context, before.run_id, cutoff)
    assert orders and verdicts  # something was decided before the cutoff

    # Everything after the cutoff changes: prices jump 30% and funding turns extreme.
    with context.warehouse.connect() as con:
        con.execute(
            "UPDATE bars SET open = open * 1.3, high = high * 1.3, low = low * 1.3, close = close * 1.3 "
            "WHERE ts_event > $cutoff",
            {"cutoff": cutoff},
        )
        con.execute("UPDATE funding_rates SET funding_rate = 0.004 WHERE ts_event > $cutoff", {"cutoff": cutoff})
    after = run_backtest(context, start, end)

    assert decisions(context, after.run_id, cutoff) == (orders, verdicts)
    # ... while the decisions after it did change: the comparison above could have failed.
    assert decisions(context, after.run_id, end) != decisions(context, before.run_id, end)
    with context.warehouse.connect(read_only=True) as con:
        for run in (before, after):
            assert con.execute(read_sql("checks/pnl_not_reconciled"), {"run_id": run.run_id}).fetchall() == []


def test_a_history_loaded_once_reads_at_each_moment_exactly_what_a_fresh_read_does(warehouse: Warehouse) -> None:
    epoch = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
    upsert(warehouse, MarketSimulator(seed=3, epoch=epoch).generate(epoch, epoch + timedelta(days=9)))
    config = EngineConfig()
    first = epoch + timedelta(days=7, hours=13)
    last = first + timedelta(days=1, hours=5)
    # Feed runs before and inside the window, one failing, so feed health changes as it goes.
    for minutes, status in ((-90, "ok"), (30, "failed"), (60 * 9, "ok")):
        moment = first + timedelta(minutes=minutes)
        record_ingestion(warehouse, IngestionRun(f"run{minutes}", "binance", moment, moment, status), {})
    history = load_history(warehouse, config, first, last)
    for minutes in (0, 1, 30, 59, 60 * 9 + 7, 60 * 29):
        moment = first + timedelta(minutes=minutes)
        fresh = load_snapshot(warehouse, config, moment)
        replayed = load_snapshot(warehouse, config, moment, history)
        assert replayed.tables.keys() == fresh.tables.keys()
        for table, frame in fresh.tables.items():
            assert_frame_equal(replayed.tables[table], frame, check_exact=True)
        assert replayed.bar_symbols() == fresh.bar_symbols()
        for symbol in fresh.bar_symbols():
            assert replayed.bar_arrays(symbol).close.tolist() == fresh.bar_arrays(symbol).close.tolist()
        assert replayed.feed_health == fresh.feed_health
        assert fresh.table("bars").height > 0 and fresh.table("funding_rates").height > 0
    during_failure = load_snapshot(warehouse, config, first + timedelta(minutes=31), history)
    assert during_failure.feed_health["binance"].status == "failed"
