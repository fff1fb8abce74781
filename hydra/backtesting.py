"""Replay stored history through the live decision path.

A backtest is a run like any other: the same `hydra.live` calls the minutely trading flow
makes (the simulated broker fed the stored minute bars, the warehouse read as of each cycle,
one `TradingSession` cycle deciding, recording and submitting), over a window of history,
under its own `backtest-...` run id so its rows never mix with paper trading. Because every
read is point in time (`ts_ingested <= cycle time`), a decision can only see what was known
when it would have been made, and the replay decides exactly as the live loop did.

One connection is held for the whole replay (nothing else should write the warehouse during a
backtest): the file is opened once instead of once per cycle. This is the application's side
of a backtest (it shares hydra.live with the trading flow, which is what makes the replay
decide as the flow does); `backtest/` is kept for the vectorised replay engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import polars as pl

from adapters.bar_file import read_bar_file
from core.config import Mode
from hydra.context import open_warehouse
from hydra.ingestion import record_result, validate_result
from hydra.live import advance_sim_broker, decide, flush, open_job, preload, record_run, write_trade_log
from hydra.recording import RecordBuffer
from hydra.report import keep_run_prices
from hydra.settings import with_overrides
from hydra.sources import FeedResult, SourceContext
from warehouse.load import copy_run
from warehouse.migrate import migrate
from warehouse.read import query_frame
from warehouse.sqlfiles import read_sql
from warehouse.tables import TRADING_TABLES

Progress = Callable[[int, int], None]  # (cycles done, cycles in all)
# Every load reads the decision windows again (8 days of minute bars, 400 of daily ones), so a
# week's chunk pays that once where daily chunks paid it seven times; a week of the watchlist's
# minute bars is about 100k rows, so memory stays bounded as before.
REPLAY_CHUNK = timedelta(days=7)


class NoHistory(Exception):
    """The window holds no stored minute bars to replay."""


@dataclass(frozen=True)
class ReplayResult:
    run_id: str
    start: datetime
    end: datetime
    cycles: int
    overview: dict[str, object]
    orders_by_strategy: pl.DataFrame
    trade_log: Path


def cycle_times(start: datetime, end: datetime, cycle_minutes: int) -> list[datetime]:
    """Decision times: every `cycle_minutes` after start, up to and including end."""
    step = timedelta(minutes=cycle_minutes)
    count = int((end - start) / step)
    return [start + step * (index + 1) for index in range(count)]


def run_backtest(
    context: SourceContext,
    start: datetime,
    end: datetime,
    *,
    label: str | None = None,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
) -> ReplayResult:
    """Replay [start, end] every `sim.cycle_minutes` with the simulated broker's costs of `sim`."""
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise ValueError("a backtest window needs UTC-aware start < end")
    with context.warehouse.connect(read_only=True) as con:
        (bars,) = con.execute(read_sql("read/minute_bars_count"), {"after": start, "until": end}).fetchall()[0]
    if not bars:
        raise NoHistory(
            f"no minute bars are stored between {start.isoformat()} and {end.isoformat()}: ingest that window first"
        )
    run_id = f"backtest-{start:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    name = label or f"backtest {start:%Y-%m-%d}..{end:%Y-%m-%d}"
    return replay(context, Mode.BACKTEST, run_id, name, start, end, progress, parent_run_id)


@dataclass(frozen=True)
class FileBacktest:
    result: ReplayResult
    loaded: int  # bars of the file that passed validation
    quarantined: int  # rows that did not, with their reasons in the scratch warehouse's quarantine
    scratch: Path  # the warehouse the file was loaded into and replayed from


def run_backtest_on_file(
    context: SourceContext,
    path: Path,
    start: datetime,
    end: datetime,
    *,
    progress: Progress | None = None,
) -> FileBacktest:
    """Replay a user's bar file: loaded (validated like any feed) into a scratch warehouse of its
    own, so it never mixes with the feeds' bars, replayed there, the run's rows copied back."""
    batch = read_bar_file(path)
    migrate(context.warehouse)  # the run's rows end up there, even for someone who only backtests files
    scratch = context.settings.warehouse.path.parent / "backtests" / f"{path.stem}-{uuid.uuid4().hex[:8]}.duckdb"
    settings = with_overrides(context.settings, {"warehouse.path": scratch})
    local = SourceContext(settings, context.secrets, open_warehouse(settings))
    migrate(local.warehouse)
    fetched = FeedResult("bars", batch, "ok", (), window_start=None, window_end=None)
    outcome = record_result(local, validate_result(local, fetched), f"file:{path.name}", datetime.now(UTC))
    if outcome.total_loaded == 0:
        raise NoHistory(f"{path}: none of its rows passed validation (reasons in the quarantine of {scratch})")
    result = run_backtest(local, start, end, label=f"backtest of {path.name}", progress=progress)
    # The run's prices go with it: its report must not depend on the scratch warehouse staying.
    keep_run_prices(local.warehouse, result.run_id, start, end, datetime.now(UTC))
    copy_run(local.warehouse, context.warehouse, result.run_id, TRADING_TABLES)
    return FileBacktest(result, outcome.total_loaded, outcome.rows_quarantined, scratch)


def replay(
    context: SourceContext,
    mode: Mode,
    run_id: str,
    label: str,
    start: datetime,
    end: datetime,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
) -> ReplayResult:
    """A new run deciding every `sim.cycle_minutes` of [start, end] on what is stored."""
    warehouse = context.warehouse
    times = cycle_times(start, end, context.settings.sim.cycle_minutes)
    started_at = datetime.now(UTC)
    # The run's row as it starts and as it ends: the same run, only its status and end differ.
    run_row = partial(
        record_run,
        context,
        run_id,
        mode,
        label,
        window=(start, end),
        started_at=started_at,
        parent_run_id=parent_run_id,
    )
    with warehouse.held():
        job = open_job(context, mode, run_id, label)
        run_row(status="running")
        job.session.buffer = RecordBuffer()
        chunk_end = start
        for done, now in enumerate(times, start=1):
            if now > chunk_end:
                # One load and one write per chunk of cycles instead of a read and two writes
                # per cycle; memory stays bounded by the decision windows plus a chunk.
                flush(job, now)
                chunk_end = min(now + REPLAY_CHUNK, times[-1])
                preload(job, now, chunk_end)
            advance_sim_broker(job, now)
            decide(job, now, recorded_at=now)
            if progress is not None:
                progress(done, len(times))
        if times:
            flush(job, times[-1])
        run_row(status="completed", ended_at=datetime.now(UTC))
        with warehouse.connect() as con:
            overview = query_frame(con, "report/run_overview", {"run_id": run_id}).row(0, named=True)
            by_strategy = query_frame(con, "report/orders_by_strategy", {"run_id": run_id})
    log = write_trade_log(context, run_id)
    return ReplayResult(run_id, start, end, len(times), overview, by_strategy, log)
