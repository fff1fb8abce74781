"""A feed that stops: trading goes on with the others, and the strategy that needs it abstains
with its reason recorded, cycle after cycle, until the feed is back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hydra.backtesting import run_backtest
from hydra.context import load_context
from hydra.jobs import FEEDS, ingest_simulated


@pytest.mark.slow
def test_binance_down_silences_the_cascade_strategy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "30")
    monkeypatch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "2")
    context = load_context()
    history = context.settings.sim.start
    start = history + timedelta(days=7)
    down_from = start - timedelta(days=2)  # Binance answers nothing for the last two days
    ingest_simulated(context, history, start + timedelta(days=1), feeds=[f for f in FEEDS if f != "binance"])
    ingest_simulated(context, history, down_from, feeds=["binance"])

    run = run_backtest(context, start, start + timedelta(days=1))

    with context.warehouse.connect(read_only=True) as con:
        abstentions = "SELECT strategy, any_value(reason), count(*) FROM strategy_abstentions WHERE run_id = $run_id"
        reasons = con.execute(f"{abstentions} GROUP BY ALL", {"run_id": run.run_id}).fetchall()
        by_code = con.execute(
            "SELECT code, count(DISTINCT reason), count(DISTINCT detail), count(*) FROM strategy_abstentions "
            "WHERE run_id = $run_id AND strategy = 'liquidation_cascade' GROUP BY code",
            {"run_id": run.run_id},
        ).fetchall()
        deciding = con.execute(
            "SELECT count(DISTINCT strategy) FROM signals WHERE run_id = $run_id", {"run_id": run.run_id}
        ).fetchall()[0][0]
    abstained = {strategy: (reason, count) for strategy, reason, count in reasons}
    reason, count = abstained["liquidation_cascade"]
    assert count == run.cycles  # every cycle, not just the first
    assert "funding_rates" in reason and "stale" in reason
    # Every cycle's reason names another age, yet its code groups them all: one row.
    assert by_code == [("input_stale", run.cycles, run.cycles, run.cycles)]
    assert deciding >= 2  # the other strategies kept deciding
    assert run.cycles == 48
