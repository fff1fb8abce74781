"""Parameter sweeps and walk-forward evaluation: many backtests of one window, in parallel.

A sweep file names a window and a grid of settings (dotted keys of hydra.toml):

    [sweep]
    start = 2026-03-09T14:30:00Z
    end = 2026-03-11T21:00:00Z

    [grid]
    "engine.risk.profile" = ["conservative", "moderate"]
    "sim.slippage_bps" = [1.0, 5.0]

Every point of the grid is one backtest (`hydra.backtesting.run_backtest`), and the points run
in parallel on Dask (see flows/backtest.py). DuckDB lets one process write a file, so each
point replays its own copy of the warehouse, taken once under a read lock; the parent process
then copies each point's run into the warehouse, under the sweep's run id as `parent_run_id`,
where `report/sweep_results` compares them in one table.
"""

from __future__ import annotations

import itertools
import shutil
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from core.config import Mode
from hydra.backtesting import run_backtest
from hydra.context import open_warehouse
from hydra.live import record_run
from hydra.runs import Owner
from hydra.settings import ConfigError, HydraSettings, load_secrets, with_overrides
from hydra.sources import SourceContext
from warehouse.load import copy_run
from warehouse.read import query_frame
from warehouse.tables import TRADING_TABLES


@dataclass(frozen=True)
class SweepSpec:
    start: datetime
    end: datetime
    grid: Mapping[str, Sequence[Any]]

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, in the file's order."""
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*self.grid.values())]


@dataclass(frozen=True)
class PointResult:
    run_id: str
    overrides: dict[str, Any]
    warehouse_path: Path


def read_sweep_file(path: Path, settings: HydraSettings) -> SweepSpec:
    """The sweep file, every grid point checked against the settings before anything runs."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"sweep file {path}: {error}") from None
    window = data.get("sweep", {})
    grid = data.get("grid", {})
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"sweep file {path}: [grid] must map settings to non-empty lists of values")
    try:
        start, end = (_utc(window[name]) for name in ("start", "end"))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"sweep file {path}: [sweep] needs start and end as UTC date-times") from None
    spec = SweepSpec(start, end, grid)
    for point in spec.points():
        with_overrides(settings, point)  # an unknown key or a loosened limit stops the sweep here
    return spec


def label_of(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in overrides.items()) or "defaults"


def snapshot_warehouse(context: SourceContext, directory: Path) -> Path:
    """A copy of the warehouse for the sweep's points to read, taken while no one writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = (directory / "base.duckdb").resolve()  # Dask workers may not share this process's directory
    with context.warehouse.connect(read_only=True):  # holds writers off while the file is copied
        shutil.copyfile(context.warehouse.path, copy)
    return copy


def replay_point(
    settings_json: str,
    base: Path,
    overrides: dict[str, Any],
    start: datetime,
    end: datetime,
    parent_run_id: str,
    index: int,
) -> PointResult:
    """One grid point, in whatever process Dask runs it: its own warehouse copy, its own run."""
    settings = with_overrides(HydraSettings.model_validate_json(settings_json), overrides)
    path = base.with_name(f"point-{index}.duckdb")
    shutil.copyfile(base, path)
    local = with_overrides(settings, {"warehouse.path": str(path)})
    context = SourceContext(local, load_secrets(), open_warehouse(local))
    result = run_backtest(context, start, end, label=label_of(overrides), parent_run_id=parent_run_id)
    return PointResult(result.run_id, overrides, path)


def collect(context: SourceContext, points: Sequence[PointResult]) -> None:
    """Each point's run into the warehouse; the copies are then removed."""
    for point in points:
        copy = replace(context.warehouse, path=point.warehouse_path)
        copy_run(copy, context.warehouse, point.run_id, TRADING_TABLES)
        point.warehouse_path.unlink()


def new_parent(context: SourceContext, kind: str, spec: SweepSpec, label: str) -> str:
    parent = f"{kind}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    window = (spec.start, spec.end)
    record_run(context, parent, Mode.BACKTEST, label, status="running", window=window, owner=Owner.this_process())
    return parent


def finish_parent(context: SourceContext, parent: str, spec: SweepSpec, label: str, status: str) -> None:
    record_run(
        context,
        parent,
        Mode.BACKTEST,
        label,
        status=status,
        window=(spec.start, spec.end),
        ended_at=datetime.now(UTC),
        owner=Owner.this_process(),
    )


def sweep_results(context: SourceContext, parent: str) -> pl.DataFrame:
    with context.warehouse.connect(read_only=True) as con:
        return query_frame(con, "report/sweep_results", {"parent_run_id": parent})


def walk_forward_windows(
    start: datetime, end: datetime, train: timedelta, test: timedelta
) -> list[tuple[datetime, datetime, datetime]]:
    """(train start, test start, test end) windows; each test window follows its training window
    and the next one starts where it ended, so the test windows tile [start + train, end]."""
    windows = []
    train_start = start
    while train_start + train + test <= end:
        windows.append((train_start, train_start + train, train_start + train + test))
        train_start += test
    return windows


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
