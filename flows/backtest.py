"""Backtest flows: a parameter sweep on Dask, and walk-forward evaluation built on it.

The grid points of a sweep are Prefect tasks run by prefect-dask's DaskTaskRunner: a local
cluster of worker processes by default (one point per core), or an existing Dask cluster when
given its address. Each point replays its own copy of the warehouse (hydra.sweeps), so the
points never wait for each other's file lock.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect_dask.task_runners import DaskTaskRunner

from hydra.backtesting import run_backtest
from hydra.context import load_context
from hydra.settings import load_settings, with_overrides
from hydra.sources import SourceContext
from hydra.sweeps import (
    PointResult,
    SweepSpec,
    collect,
    finish_parent,
    label_of,
    new_parent,
    read_sweep_file,
    replay_point,
    snapshot_warehouse,
    sweep_results,
    walk_forward_windows,
)
from warehouse.migrate import migrate

# One grid point is one task: what a Dask worker runs, with no cache (its inputs are settings).
replay_point_task = task(name="replay-point", cache_policy=NO_CACHE)(replay_point)


@flow(name="replay-grid")
def replay_grid(
    settings_json: str, base: Path, points: list[dict[str, Any]], start: datetime, end: datetime, parent_run_id: str
) -> list[PointResult]:
    futures = [
        replay_point_task.submit(settings_json, base, point, start, end, parent_run_id, index)
        for index, point in enumerate(points)
    ]
    return [future.result() for future in futures]


def dask_runner(dask_address: str | None, workers: int | None) -> DaskTaskRunner:
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    # Processes, one thread each: a replay is CPU-bound Python, which threads would serialise.
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})


def run_grid(
    context: SourceContext,
    spec: SweepSpec,
    parent: str,
    dask_address: str | None,
    workers: int | None,
) -> list[PointResult]:
    base = snapshot_warehouse(context, context.settings.warehouse.path.parent / "backtests" / parent)
    try:
        # prefect-dask types its runner's futures as its own PrefectFuture subclass, which
        # Flow.with_options' annotation does not admit; the runner is what Prefect expects.
        grid = replay_grid.with_options(task_runner=dask_runner(dask_address, workers))  # type: ignore[arg-type]
        points = grid(context.settings.model_dump_json(), base, spec.points(), spec.start, spec.end, parent)
        collect(context, points)
    finally:
        shutil.rmtree(base.parent, ignore_errors=True)  # the copies of points that failed, too
    return points


@flow(name="backtest-sweep")
def sweep(
    sweep_file: str,
    overrides: dict[str, Any] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> list[dict[str, Any]]:
    """Every point of the sweep file's grid backtested over its window; results best first.
    `overrides` (dotted settings) apply to every point before the grid's own values."""
    context = load_context(with_overrides(load_settings(), overrides or {}))
    migrate(context.warehouse)
    spec = read_sweep_file(Path(sweep_file), context.settings)
    label = f"sweep {Path(sweep_file).name}: {len(spec.points())} points"
    parent = new_parent(context, "sweep", spec, label)
    try:
        run_grid(context, spec, parent, dask_address, workers)
    except BaseException:
        finish_parent(context, parent, spec, label, "failed")
        raise
    finish_parent(context, parent, spec, label, "completed")
    get_run_logger().info("sweep %s: %d runs", parent, len(spec.points()))
    return [{"sweep": parent, **row} for row in sweep_results(context, parent).to_dicts()]


@flow(name="backtest-walk-forward")
def walk_forward(
    start: datetime,
    end: datetime,
    train_days: float,
    test_days: float,
    sweep_file: str | None = None,
    overrides: dict[str, Any] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Per window: choose the settings on the training window (the sweep's best by Sharpe, then
    P&L) and trade the test window that follows out of sample. The regime rules have nothing to fit:
    only the sweep's choice is learned in sample."""
    context = load_context(with_overrides(load_settings(), overrides or {}))
    migrate(context.warehouse)
    train, test = timedelta(days=train_days), timedelta(days=test_days)
    grid = read_sweep_file(Path(sweep_file), context.settings).grid if sweep_file else {}
    whole = SweepSpec(start, end, grid)
    label = f"walk-forward train {train_days:g}d test {test_days:g}d"
    parent = new_parent(context, "walkforward", whole, label)
    windows = []
    for index, (train_start, test_start, test_end) in enumerate(walk_forward_windows(start, end, train, test)):
        chosen: dict[str, Any] = {}
        if grid:
            spec = SweepSpec(train_start, test_start, grid)
            trials = run_grid(context, spec, f"{parent}-train{index}", dask_address, workers)
            best = sweep_results(context, f"{parent}-train{index}").row(0, named=True)["run_id"]
            chosen = next(trial.overrides for trial in trials if trial.run_id == best)
        settings = with_overrides(context.settings, chosen)
        tested = run_backtest(
            load_context(settings),
            test_start,
            test_end,
            label=f"window {index}: {label_of(chosen)}",
            parent_run_id=parent,
        ).run_id
        windows.append({"window": index, "train_start": train_start, "test_start": test_start, "run_id": tested})
    finish_parent(context, parent, whole, label, "completed")
    results = {row["run_id"]: row for row in sweep_results(context, parent).to_dicts()}
    per_window = [{**window, **results[window["run_id"]]} for window in windows]
    return {"walk_forward": parent, "windows": per_window, "stitched": stitch(per_window)}


def stitch(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The out-of-sample windows chained: each starts with the same cash, so their returns compound."""
    growth = 1.0
    for window in windows:
        if window["initial_equity"]:
            growth *= window["final_equity"] / window["initial_equity"]
    return {
        "windows": len(windows),
        "trades": sum(window["trades"] for window in windows),
        "total_pnl": sum(window["total_pnl"] for window in windows),
        "compounded_return": growth - 1.0,
        "worst_drawdown": max((window["max_drawdown"] or 0.0 for window in windows), default=0.0),
    }
