"""The backtest replays history through the live path, seeing each fact only once it was known."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from adapters.simulator import MarketSimulator
from core.calendar import Timeframe
from core.config import DEFAULT_WATCHLIST, EngineConfig
from core.types import ReasonCode
from hydra.backtesting import NoHistory, cycle_times, run_backtest, run_backtest_on_data
from hydra.context import load_context, market_calendar
from hydra.decide import load_history, load_snapshot
from hydra.jobs import ingest_simulated
from hydra.live import check_strategies
from hydra.sources import SourceContext
from strategies import REGISTRY
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


def minute_bar_file(path: Path, symbols: Sequence[str] = DEFAULT_WATCHLIST) -> Path:
    """The simulator's minute bars of `symbols` over eight days from 2026-03-02: prices alone."""
    epoch = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
    bars = MarketSimulator(seed=7, epoch=epoch).generate(epoch, epoch + timedelta(days=8))["bars"]
    minute = bars.filter((pl.col("timeframe") == "1Min") & pl.col("symbol").is_in(list(symbols)))
    minute.select("symbol", "ts_event", "open", "high", "low", "close", "volume").write_parquet(path)
    return path


def strategy_rows(context: SourceContext, run_id: str) -> list[tuple[Any, ...]]:
    with context.warehouse.connect(read_only=True) as con:
        found = con.execute(
            "SELECT strategy, can_run, code, detail FROM run_strategies WHERE run_id = $run_id ORDER BY strategy",
            {"run_id": run_id},
        )
        return found.fetchall()


def test_a_backtest_on_bars_alone_records_which_strategies_could_not_run_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "60")
    context = load_context()
    start = datetime.fromisoformat("2026-03-09T14:30:00+00:00")
    run = run_backtest_on_data(context, minute_bar_file(tmp_path / "prices.parquet"), start, start + timedelta(hours=3))
    expected = [
        ("ai_disruption", False, "input_missing", "github_releases, headlines, repo_stats (no rows in the window)"),
        ("cross_asset", True, None, None),
        ("liquidation_cascade", False, "input_missing", "funding_rates, open_interest (no rows in the window)"),
        ("macro_event", False, "input_missing", "economic_events (no rows in the window)"),
        ("precious_metals", True, None, None),
    ]
    assert strategy_rows(context, run.result.run_id) == expected  # copied back with the run's other rows
    # After the run, each says in how many cycles it decided and what it abstained for most.
    overview = run.result.strategies.select("strategy", "can_run", "cycles_decided", "top_abstention").rows()
    assert overview == [
        ("ai_disruption", False, 0, "input_missing"),
        ("cross_asset", True, run.result.cycles, None),
        ("liquidation_cascade", False, 0, "input_missing"),
        ("macro_event", False, 0, "input_missing"),
        ("precious_metals", True, run.result.cycles, None),
    ]
    log = json.loads(run.result.trade_log.read_text(encoding="utf-8"))
    assert [(s["strategy"], s["can_run"], s["code"]) for s in log["overview"]["strategies"]] == [
        row[:3] for row in expected
    ]


def test_prices_of_one_symbol_alone_leave_only_a_strategy_that_trades_it_able_to_run(tmp_path: Path) -> None:
    context = load_context()
    start = datetime.fromisoformat("2026-03-09T14:30:00+00:00")
    run = run_backtest_on_data(
        context, minute_bar_file(tmp_path / "spy.parquet", ["SPY"]), start, start + timedelta(hours=1)
    )
    rows = {
        strategy: (can_run, code, detail)
        for strategy, can_run, code, detail in strategy_rows(context, run.result.run_id)
    }
    assert [strategy for strategy, (can_run, _, _) in rows.items() if can_run] == ["cross_asset"]
    assert rows["cross_asset"] == (True, None, "no bars for TLT, GLD, BTC/USD, HYG, VIXY")
    assert rows["precious_metals"] == (False, "symbol_missing", "none of GLD, SLV, GDX has bars in the window")


@pytest.mark.slow
def test_a_backtest_over_the_simulators_full_data_says_all_five_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "60")
    context = load_context()
    start = context.settings.sim.start + timedelta(days=7, hours=14, minutes=30)
    ingest_simulated(context, context.settings.sim.start, start + timedelta(hours=3))
    run = run_backtest(context, start, start + timedelta(hours=3))
    assert strategy_rows(context, run.run_id) == [
        (strategy.name, True, None, None) for strategy in sorted(REGISTRY, key=lambda s: s.name)
    ]
    decided = dict(run.strategies.select("strategy", "cycles_decided").rows())
    assert decided == {strategy.name: run.cycles for strategy in REGISTRY}
    # A live run checks what its cycles read as of now: the same, and nothing long after the data.
    end = start + timedelta(hours=3)
    assert all(found.can_run for found in check_strategies(context, "paper-main", end, end))
    later = end + timedelta(days=60)
    codes = [
        found.reason.code if found.reason else None for found in check_strategies(context, "paper-main", later, later)
    ]
    assert codes == [ReasonCode.INPUT_MISSING] * len(REGISTRY)
