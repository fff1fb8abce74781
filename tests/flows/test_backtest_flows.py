"""Sweeps on Dask and walk-forward evaluation, under a real (temporary) Prefect server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.backtest import sweep, walk_forward
from hydra.context import load_context
from hydra.jobs import ingest_simulated
from hydra.settings import ConfigError
from hydra.sweeps import read_sweep_file, walk_forward_windows
from warehouse.sqlfiles import read_sql

pytestmark = pytest.mark.usefixtures("prefect_harness")
WAREHOUSE = Path("data/hydra.duckdb")
WINDOW = "[sweep]\nstart = 2026-03-09T00:00:00Z\nend = 2026-03-10T00:00:00Z\n"


def query(sql: str, parent: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        return con.execute(sql, {"parent": parent}).fetchall()


def assert_pnl_reconciles(parent: str) -> None:
    """Every run of the sweep or walk-forward: its trades' P&L adds up to its change in equity."""
    children = query("SELECT run_id FROM runs WHERE parent_run_id = $parent", parent)
    assert children
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        for (run_id,) in children:
            assert con.execute(read_sql("checks/pnl_not_reconciled"), {"run_id": run_id}).fetchall() == [], run_id


def test_walk_forward_windows_tile_the_period_after_the_first_training_window() -> None:
    start = load_context().settings.sim.start
    day = timedelta(days=1)
    windows = walk_forward_windows(start, start + 10 * day, 4 * day, 2 * day)
    assert windows == [
        (start, start + 4 * day, start + 6 * day),
        (start + 2 * day, start + 6 * day, start + 8 * day),
        (start + 4 * day, start + 8 * day, start + 10 * day),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'{WINDOW}[grid]\n"sim.nope" = [1]\n', "sim.nope"),
        ('[sweep]\nstart = 2026-03-09T00:00:00Z\n[grid]\n"sim.fee_bps" = [1]\n', "needs start and end"),
        (f'{WINDOW}[grid]\n"sim.fee_bps" = []\n', "non-empty"),
        (f'{WINDOW}[grid]\n"engine.risk.max_position" = [0.5]\n', "looser than"),
    ],
)
def test_a_bad_sweep_file_stops_before_anything_runs(text: str, message: str) -> None:
    Path("sweep.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_sweep_file(Path("sweep.toml"), load_context().settings)


@pytest.mark.slow
def test_a_sweep_runs_every_point_on_dask_and_compares_them_in_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "60")
    monkeypatch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "2")
    context = load_context()
    history = context.settings.sim.start
    start = history + timedelta(days=7, hours=14, minutes=30)
    ingest_simulated(context, history, start + timedelta(days=1))
    Path("sweep.toml").write_text(
        f"[sweep]\nstart = {start.isoformat()}\nend = {(start + timedelta(hours=8)).isoformat()}\n"
        '[grid]\n"engine.risk.profile" = ["conservative", "aggressive"]\n"sim.slippage_bps" = [1.0, 50.0]\n',
        encoding="utf-8",
    )
    rows = sweep("sweep.toml", workers=2)

    assert len(rows) == 4 and len({row["sweep"] for row in rows}) == 1
    assert sorted(row["settings"] for row in rows) == sorted(
        f"engine.risk.profile={profile}, sim.slippage_bps={slippage}"
        for profile in ("conservative", "aggressive")
        for slippage in (1.0, 50.0)
    )
    parent = rows[0]["sweep"]
    assert query("SELECT status FROM runs WHERE run_id = $parent", parent) == [("completed",)]
    assert query(
        "SELECT count(*) FROM cycles WHERE run_id IN (SELECT run_id FROM runs WHERE parent_run_id = $parent)", parent
    ) == [(4 * 8,)]
    profiles = query("SELECT DISTINCT profile FROM runs WHERE parent_run_id = $parent ORDER BY profile", parent)
    assert profiles == [("aggressive",), ("conservative",)]
    assert_pnl_reconciles(parent)
    assert not (Path("data") / "backtests" / parent).exists()  # the points' copies are gone


@pytest.mark.slow
def test_walk_forward_chooses_on_each_training_window_and_trades_the_next_out_of_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HYDRA_SIM__CYCLE_MINUTES", "120")
    monkeypatch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "2")
    context = load_context()
    history = context.settings.sim.start
    start = history + timedelta(days=7)
    ingest_simulated(context, history, start + timedelta(days=2))
    Path("grid.toml").write_text(
        f'[sweep]\nstart = {start.isoformat()}\nend = {start.isoformat()}\n[grid]\n"sim.slippage_bps" = [1.0, 80.0]\n',
        encoding="utf-8",
    )
    outcome = walk_forward(start, start + timedelta(days=2), 1.0, 0.5, sweep_file="grid.toml", workers=2)

    windows = outcome["windows"]
    assert [w["test_start"] for w in windows] == [start + timedelta(days=1), start + timedelta(days=1.5)]
    assert all(w["settings"].startswith(f"window {i}: sim.slippage_bps=") for i, w in enumerate(windows))
    assert_pnl_reconciles(outcome["walk_forward"])
    stitched = outcome["stitched"]
    assert stitched["windows"] == 2 and stitched["trades"] == sum(w["trades"] for w in windows)
    growth = 1.0
    for window in windows:
        growth *= window["final_equity"] / window["initial_equity"]
    assert stitched["compounded_return"] == pytest.approx(growth - 1.0)
