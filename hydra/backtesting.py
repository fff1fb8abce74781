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

from adapters.bar_file import daily_bars_of
from adapters.bundle import DataBundle
from core.calendar import MarketCalendar, Sessions, Timeframe
from core.config import Mode
from core.timestamps import from_micros, micros
from hydra.context import market_calendar, open_warehouse
from hydra.ingestion import ingest_chunks
from hydra.live import (
    TradingJob,
    advance_sim_broker,
    check_strategies,
    decide,
    flush,
    open_job,
    preload,
    record_run,
    write_trade_log,
)
from hydra.recording import RecordBuffer
from hydra.report import keep_run_prices
from hydra.runs import Heartbeat, Owner, settle_dead_runs
from hydra.scratch import ScratchFolder, content_key, touch
from hydra.settings import with_overrides
from hydra.sources import SourceContext
from quality.rules import not_null_columns
from warehouse import Warehouse
from warehouse.load import copy_run, upsert
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
    cadence: str  # when the cycles came: "every 30 minutes on 30Min bars", "at each session's open on 1Day bars"
    strategies: pl.DataFrame  # which could run on the run's data, how often each decided (report/run_strategies)
    overview: dict[str, object]
    orders_by_strategy: pl.DataFrame
    trade_log: Path


def cycle_times(
    start: datetime, end: datetime, cycle_minutes: int, timeframe: Timeframe, sessions: Sessions
) -> list[datetime]:
    """Decision times in (start, end]: every `cycle_minutes` (at least a bar apart) on intraday
    bars; on daily bars, each session's open, when the last session's bar is known and orders fill
    at the open that follows."""
    if not timeframe.intraday:
        opens = sessions.opens[(sessions.opens > micros(start)) & (sessions.opens <= micros(end))]
        return [from_micros(int(moment)) for moment in opens]
    step = cycle_step(cycle_minutes, timeframe)
    count = int((end - start) / step)
    return [start + step * (index + 1) for index in range(count)]


def cycle_step(cycle_minutes: int, timeframe: Timeframe) -> timedelta:
    """How far apart intraday cycles come: `cycle_minutes`, never more often than the bars."""
    return max(timedelta(minutes=cycle_minutes), timeframe.length)


def cadence(cycle_minutes: int, timeframe: Timeframe) -> str:
    if not timeframe.intraday:
        return f"at each session's open on {timeframe} bars"
    return f"every {cycle_step(cycle_minutes, timeframe) // timedelta(minutes=1)} minutes on {timeframe} bars"


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
    timeframe = context.settings.engine.timeframe
    with context.warehouse.connect(read_only=True) as con:
        (bars,) = con.execute(
            read_sql("read/bars_count"), {"timeframe": timeframe.value, "after": start, "until": end}
        ).fetchall()[0]
    if not bars:
        raise NoHistory(
            f"no {timeframe} bars are stored between {start.isoformat()} and {end.isoformat()}: "
            "ingest that window first"
        )
    run_id = f"backtest-{start:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    name = label or f"backtest {start:%Y-%m-%d}..{end:%Y-%m-%d}"
    return replay(context, Mode.BACKTEST, run_id, name, start, end, progress, parent_run_id)


@dataclass(frozen=True)
class TableLoad:
    """What loading one file of a `--data` run came to."""

    table: str
    path: Path
    loaded: int  # rows that passed validation
    quarantined: int  # rows that did not, with their reasons in the scratch warehouse's quarantine


@dataclass(frozen=True)
class DataBacktest:
    result: ReplayResult
    loads: tuple[TableLoad, ...]  # each file's, bars first
    scratch: Path  # the warehouse the data was loaded into, kept for the next run on the same content
    reused: bool  # the same content had been loaded before: this run reused its scratch warehouse


def run_backtest_on_data(
    context: SourceContext,
    path: Path,
    start: datetime,
    end: datetime,
    *,
    progress: Progress | None = None,
) -> DataBacktest:
    """Replay a user's data, a bar file or a folder of one file per table (adapters.bundle):
    loaded (each file validated like its feed) into a scratch warehouse of its own, so it never
    mixes with the feeds' rows, replayed there, the run's rows copied back.

    Every file's columns are checked and the bars surveyed first (their symbol, time and close
    columns, a chunk at a time): a bad file, or a window outside the bars, fails at once. The
    content names the scratch warehouse (hydra.scratch): the first run loads each file chunk by
    chunk, later runs on the same content reuse it. Each run replays in a copy of it, removed
    afterwards.
    """
    bundle = DataBundle.open(path, context.settings.engine.watchlist, not_null_columns)
    bars = bundle.bars
    if end <= bars.first or start > bars.last:
        raise NoHistory(
            f"{bars.path}: its bars run from {bars.first:%Y-%m-%d %H:%M} to {bars.last:%Y-%m-%d %H:%M} UTC; "
            f"the window {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} is outside them"
        )
    migrate(context.warehouse)  # the run's rows end up there, even for someone who only backtests files
    settings = context.settings
    folder = ScratchFolder(settings.warehouse.path.parent / "backtests", int(settings.backtest.scratch_limit_gb * 1e9))
    sources = bundle.sources
    key = content_key([(source.table, source.path) for source in sources], bundle.load_settings)
    scratch = folder.find(key)
    reused = scratch is not None
    if scratch is None:
        scratch = folder.named(path.stem, key)
        with folder.loading(scratch) as partial:
            loading = _scratch_context(context, partial)
            migrate(loading.warehouse)
            with loading.warehouse.held():  # held open, so another run's bound() leaves it alone
                for source, chunks in bundle.chunks():
                    ingest_chunks(loading, source.feed, chunks, f"file:{source.path.name}")
                if bars.finest.intraday:
                    add_daily_bars(loading.warehouse, bars.finest, bars.calendar(), f"file:{bars.path.name}")
    touch(scratch)
    folder.bound(keep={scratch})
    with _scratch_context(context, scratch).warehouse.connect(read_only=True) as con:
        counts = {
            feed: (loaded, quarantined)
            for feed, loaded, quarantined in con.execute(read_sql("read/file_loads")).fetchall()
        }
    loads = tuple(TableLoad(source.table, source.path, *counts.get(source.feed, (0, 0))) for source in sources)
    if loads[0].loaded == 0:
        raise NoHistory(f"{bars.path}: none of its rows passed validation (reasons in the quarantine of {scratch})")
    with folder.copy_of(scratch) as copy:
        # Coarser bars are decided on as they are, at their cadence (daily: each session's open).
        local = _scratch_context(context, copy, {"engine.timeframe": bars.finest.value})
        migrate(local.warehouse)
        result = run_backtest(local, start, end, label=f"backtest of {path.name}", progress=progress)
        # The run's prices go with it: its report must not depend on the scratch warehouse staying.
        keep_run_prices(local.warehouse, result.run_id, start, end, datetime.now(UTC))
        copy_run(local.warehouse, context.warehouse, result.run_id, TRADING_TABLES)
    return DataBacktest(result, loads, scratch, reused)


def _replay_cycles(
    job: TradingJob, times: list[datetime], start: datetime, progress: Progress | None, heartbeat: Heartbeat
) -> None:
    chunk_end = start
    for done, now in enumerate(times, start=1):
        heartbeat.beat()
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


def _scratch_context(context: SourceContext, path: Path, overrides: dict[str, object] | None = None) -> SourceContext:
    settings = with_overrides(context.settings, {"warehouse.path": path, **(overrides or {})})
    return SourceContext(settings, context.secrets, open_warehouse(settings))


def add_daily_bars(warehouse: Warehouse, timeframe: Timeframe, calendar: MarketCalendar, source: str) -> int:
    """Daily bars, aggregated per session from `timeframe`'s bars, for the symbols that have none
    (adapters.bar_file.daily_bars_of); returns how many were added."""
    with warehouse.connect() as con:
        intraday = query_frame(con, "read/intraday_bars_without_daily", {"timeframe": timeframe.value})
    return upsert(warehouse, {"bars": daily_bars_of(intraday, calendar, source)})["bars"]


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
    engine = context.settings.engine
    times = cycle_times(start, end, context.settings.sim.cycle_minutes, engine.timeframe, market_calendar().equities)
    started_at = datetime.now(UTC)
    # The run's row as it starts and as it ends: the same run, only its status and end differ.
    # This process owns it: should the process die without a word, the next command marks it failed.
    run_row = partial(
        record_run,
        context,
        run_id,
        mode,
        label,
        window=(start, end),
        started_at=started_at,
        parent_run_id=parent_run_id,
        owner=Owner.this_process(),
    )
    with warehouse.held():
        settle_dead_runs(warehouse)
        job = open_job(context, mode, run_id, label)
        run_row(status="running")
        job.session.buffer = RecordBuffer()
        try:
            check_strategies(context, run_id, start, end)
            _replay_cycles(job, times, start, progress, Heartbeat(warehouse, run_id))
        except KeyboardInterrupt:
            # The run's row must not say `running` for ever: what it recorded stays, marked as cut short.
            run_row(status="aborted", ended_at=datetime.now(UTC), reason="interrupted (Ctrl-C)")
            raise
        except Exception as error:
            run_row(status="failed", ended_at=datetime.now(UTC), reason=f"{type(error).__name__}: {error}")
            raise
        run_row(status="completed", ended_at=datetime.now(UTC))
        with warehouse.connect() as con:
            strategies = query_frame(con, "report/run_strategies", {"run_id": run_id})
            overview = query_frame(con, "report/run_overview", {"run_id": run_id}).row(0, named=True)
            by_strategy = query_frame(con, "report/orders_by_strategy", {"run_id": run_id})
    log = write_trade_log(context, run_id)
    every = cadence(context.settings.sim.cycle_minutes, engine.timeframe)
    return ReplayResult(run_id, start, end, len(times), every, strategies, overview, by_strategy, log)
