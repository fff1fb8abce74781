"""`hydra run` in sim mode, end to end: simulated feeds -> warehouse -> decisions -> simulated broker -> records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from hydra.context import load_context
from hydra.jobs import ingest_simulated
from hydra.settings import SimConfig
from hydra.simulation import run_simulation, trading_start
from warehouse.migrate import migrate
from warehouse.sqlfiles import read_sql


def test_the_warm_up_is_counted_in_nyse_sessions() -> None:
    # Monday 2 March 2026 plus five sessions: trading starts as the next week's Monday begins.
    assert trading_start(SimConfig()) == datetime(2026, 3, 9, tzinfo=UTC)
    # Thanksgiving week holds four sessions (the 26th is a holiday), so the warm-up reaches Monday.
    thanksgiving_week = datetime(2026, 11, 23, tzinfo=UTC)
    assert trading_start(SimConfig(start=thanksgiving_week)) == datetime(2026, 12, 1, tzinfo=UTC)
    assert trading_start(SimConfig(start=thanksgiving_week, warmup_sessions=0)) == thanksgiving_week
    # A session already under way at the start is not a whole one.
    mid_session = datetime(2026, 11, 23, 15, tzinfo=UTC)
    assert trading_start(SimConfig(start=mid_session, warmup_sessions=1)) == datetime(2026, 11, 25, tzinfo=UTC)


def test_the_warm_up_ingestion_loads_the_daily_history_through_validation() -> None:
    context = load_context()
    migrate(context.warehouse)
    start = context.settings.sim.start
    ingested = ingest_simulated(context, start, start + timedelta(hours=1), feeds=["bars"])
    assert [result.run.status for result in ingested.results] == ["ok"]
    with context.warehouse.connect(read_only=True) as con:
        history = con.execute(
            "SELECT symbol, count(*), max(ts_ingested) FROM bars WHERE timeframe = '1Day' AND ts_event < $start "
            "GROUP BY symbol",
            {"start": start},
        ).fetchall()
        (quarantined,) = con.execute("SELECT count(*) FROM quarantine").fetchone() or (None,)
    watchlist = context.settings.engine.watchlist
    assert {symbol: count for symbol, count, _ in history} == dict.fromkeys(watchlist, 300)
    assert max(known for _, _, known in history) <= start + timedelta(minutes=1)
    assert quarantined == 0


@pytest.mark.slow
def test_two_simulated_days_trade_several_strategies_within_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # A regime lasts sessions: seed 3's days are stressed (a crash, then high volatility), where
    # every strategy has a regime to trade in; seed 42's (`make run`'s) trend calmly up.
    monkeypatch.setenv("HYDRA_SIM__SEED", "3")
    monkeypatch.setenv("HYDRA_SIM__DAYS", "2")
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "15")
    context = load_context()
    outcome = run_simulation(context)
    limits = context.settings.risk.limits
    with duckdb.connect(str(Path("data/hydra.duckdb")), read_only=True) as con:

        def rows(sql: str, **params: object) -> list[tuple[object, ...]]:
            return con.execute(sql, {"run_id": outcome.run_id, **params}).fetchall()

        strategies_with_orders = rows("SELECT DISTINCT strategy FROM orders WHERE run_id = $run_id")
        assert len(strategies_with_orders) >= 4, strategies_with_orders
        assert rows("SELECT count(*) FROM regimes WHERE run_id = $run_id AND changed AND evaluated")[0][0] >= 2
        assert rows(read_sql("checks/approvals_over_limits"), max_position=limits.max_position) == []
        assert rows(read_sql("checks/trades_per_day_over_limit"), max_trades_per_day=limits.max_trades_per_day) == []
        assert rows(read_sql("checks/views_entered_twice")) == []
        assert rows(read_sql("checks/pnl_not_reconciled")) == []
        filled = rows("SELECT count(*) FROM orders WHERE run_id = $run_id AND status = 'filled'")[0][0]
        fills = rows("SELECT count(DISTINCT client_order_id) FROM fills WHERE run_id = $run_id")[0][0]
        assert filled > 0 and fills >= filled
        # Every cycle recorded, each exactly once, with the state the next one started from.
        assert rows("SELECT count(*), count(DISTINCT ts_event) FROM cycles WHERE run_id = $run_id")[0] == (
            outcome.cycles,
            outcome.cycles,
        )
        # One row per thing a resumed run reads back: the engine and the simulated account.
        assert rows("SELECT key FROM engine_state WHERE run_id = $run_id ORDER BY key") == [
            ("engine",),
            ("sim_broker",),
        ]
        assert rows("SELECT status FROM runs WHERE run_id = $run_id") == [("completed",)]
        trades = rows("SELECT count(*), count(*) FILTER (WHERE status = 'closed') FROM trades WHERE run_id = $run_id")
    assert outcome.overview["closed_trades"] > 0
    log = json.loads(outcome.trade_log.read_text(encoding="utf-8"))
    assert log["run_id"] == outcome.run_id and log["overview"]["cycles"] == outcome.cycles
    assert (len(log["trades"]), sum(t["status"] == "closed" for t in log["trades"])) == trades[0]
    closed = next(t for t in log["trades"] if t["status"] == "closed")
    assert closed["fills"] and {o["intent"] for o in closed["orders"]} == {"entry", "exit"}
