"""The trading job of every world: which run, which broker, what time it is, one cycle.

The minutely trading flow's tasks and `hydra run`'s simulated loop call these same
functions. A job is opened from the warehouse (a served flow run is a fresh process), so
everything a cycle needs is read back: the engine state, the regime model, the working
orders and, in sim, the simulated broker's account.

Time: in paper mode a cycle decides at the current minute; in sim mode the market's clock is
what ingestion has loaded, so a cycle decides at the close of the newest stored minute bar.
"""

from __future__ import annotations

import json
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.alpaca_broker import AlpacaBroker
from adapters.broker import Broker, BrokerError
from adapters.sim_broker import Bar, SimBroker, SimBrokerState
from core.calendar import MarketCalendar, Timeframe
from core.codec import decode, encode
from core.config import Mode, is_crypto
from core.strategy import Availability, WindowData, availability
from hydra.context import market_calendar
from hydra.decide import KnownHistory, decision_windows, load_history, load_snapshot
from hydra.recording import (
    ENGINE_STATE_KEY,
    CycleRecord,
    Discrepancy,
    KeptState,
    record_availability,
    store_value,
    stored_value,
)
from hydra.runs import Owner
from hydra.settings import HydraSettings
from hydra.sources import SourceContext
from hydra.trading import TradingSession, resume_state
from strategies import REGISTRY
from warehouse.connection import in_transaction
from warehouse.read import query_frame
from warehouse.sqlfiles import read_sql

MINUTE = timedelta(minutes=1)
# Alpaca publishes a minute's bar a few seconds after the minute ends.
BAR_SETTLE = timedelta(seconds=5)
SIM_BROKER_KEY = "sim_broker"


class NoMarketData(Exception):
    """There is nothing to decide on: no minute bars are stored."""


@dataclass
class TradingJob:
    context: SourceContext
    mode: Mode
    session: TradingSession
    sim_broker: SimBroker | None  # the simulated account, saved with every record; None when paper trading
    adopted: bool = False  # whether the broker's unrecorded orders were looked for in this process
    # A replay's preloaded rows (`preload`); without them each cycle reads the warehouse.
    history: KnownHistory | None = None
    tape: MarketTape | None = None

    @property
    def run_id(self) -> str:
        return self.session.run_id


def session_run_id(settings: HydraSettings, mode: Mode) -> str:
    return f"{mode.value}-{settings.trading.session}"


def new_sim_run_id(start: datetime) -> str:
    return f"sim-{start:%Y%m%d}-{uuid.uuid4().hex[:8]}"


def open_job(context: SourceContext, mode: Mode, run_id: str, label: str | None = None) -> TradingJob:
    """The run `run_id` in `mode`, resumed from the warehouse; recorded in `runs` if new."""
    settings = context.settings
    sim_broker = None
    broker: Broker
    if mode is Mode.PAPER:
        endpoint = settings.feeds.alpaca_trading
        broker = AlpacaBroker(
            context.secrets.require("alpaca_api_key"),
            context.secrets.require("alpaca_secret_key"),
            endpoint.base_url,
            timeout_s=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
            max_wait_s=settings.feeds.max_wait_s,
            crypto_symbols=[s for s in settings.engine.watchlist if "/" in s],
        )
    elif mode in (Mode.SIM, Mode.BACKTEST):
        sim = settings.sim
        sim_broker = SimBroker(
            starting_cash=sim.starting_cash,
            slippage_bps=sim.slippage_bps,
            fee_bps=sim.fee_bps,
            calendar=market_calendar(),
            unshortable=sim.unshortable,
        )
        saved = stored_value(context.warehouse, run_id, SIM_BROKER_KEY)
        if saved is not None:
            sim_broker.restore(decode(SimBrokerState, saved))
        broker = sim_broker
    session = TradingSession.resume(context.warehouse, run_id, settings.engine, broker, REGISTRY, market_calendar())
    if sim_broker is not None:
        account = sim_broker
        session.kept_with_records = lambda now: [KeptState(run_id, SIM_BROKER_KEY, account.export_state(), now)]
    if session.state.last_cycle_at is None:
        record_run(context, run_id, mode, label or f"{mode.value} session", status="running")
    return TradingJob(context, mode, session, sim_broker)


class DecisionAhead(Exception):
    """A decision time after the world's clock: refused, for the session would then skip every
    cycle (the minute already decided) until the clock caught up."""


class SessionAhead(Exception):
    """The session's last decision lies after the world's clock (an `--at` in the future, decided
    before such times were refused): nothing is decided until `hydra trade --reset-clock`."""


def world_clock(context: SourceContext, mode: Mode, wall_clock: datetime) -> datetime:
    """What time it is in the world `mode` trades in: the wall clock when paper trading; in sim,
    whose market is what ingestion has loaded, the close of the newest stored minute bar."""
    if mode is Mode.PAPER:
        return wall_clock.astimezone(UTC)
    with context.warehouse.connect() as con:
        (latest,) = con.execute(read_sql("read/latest_minute_bar")).fetchone() or (None,)
    if not isinstance(latest, datetime):
        raise NoMarketData("no minute bars are stored: ingest first (`hydra ingest`, or `hydra run` in sim)")
    return latest.astimezone(UTC) + MINUTE


def cycle_time(job: TradingJob, wall_clock: datetime) -> datetime:
    """When this cycle decides: the current minute (paper) or the close of the newest stored bar (sim)."""
    return world_clock(job.context, job.mode, wall_clock).replace(second=0, microsecond=0)


def decision_time(mode: Mode, at: datetime | None, world: datetime) -> datetime:
    """`at`, or the minute of the world's clock; a time after the world's clock is refused."""
    if at is None:
        return world.replace(second=0, microsecond=0)
    if at > world:
        clock = "the wall clock" if mode is Mode.PAPER else "the close of the newest stored bar"
        raise DecisionAhead(
            f"cannot decide at {at.isoformat()}: it is after {clock} ({world.isoformat(timespec='seconds')}), "
            "and the session would skip every cycle until then"
        )
    return at


def session_ahead(run_id: str, last_cycle_at: datetime | None, world: datetime) -> SessionAhead | None:
    if last_cycle_at is None or last_cycle_at <= world:
        return None
    return SessionAhead(
        f"run {run_id} last decided at {last_cycle_at.isoformat()}, after the world's clock "
        f"({world.isoformat(timespec='seconds')}): no cycle decides until then; "
        "`hydra trade --reset-clock` sets its clock back to its last decision before now"
    )


def reset_clock(context: SourceContext, mode: Mode, run_id: str, wall_clock: datetime) -> datetime | None:
    """Set the session's clock back from a decision in the future to its last decision at or
    before the world's clock (None: it has none). Returns the future time it was set back from,
    or None when the clock was not ahead. The future cycles' rows stay: they were recorded, and
    any orders they sent are followed like any other."""
    world = world_clock(context, mode, wall_clock)
    state = resume_state(context.warehouse, run_id)
    if session_ahead(run_id, state.last_cycle_at, world) is None:
        return None
    with context.warehouse.connect() as con:
        (last_before,) = con.execute(read_sql("read/last_cycle_before"), {"run_id": run_id, "until": world}).fetchall()[
            0
        ]
    store_value(
        context.warehouse, run_id, ENGINE_STATE_KEY, encode(replace(state, last_cycle_at=last_before)), wall_clock
    )
    return state.last_cycle_at


class MarketTape:
    """The watchlist's stored bars of the run's timeframe that closed in (after, until], by the
    moment they closed: what a simulated broker is shown as its clock moves
    (sql/read/bars_between.sql).

    Each bar reaches the broker at its close, stamped with the moment its open price traded: an
    intraday bar's start, a daily equity bar's session open. So an order placed at a session's
    open (a daily cycle) fills at that session's open price, and one placed at 10:00 fills at the
    open of the bar starting at 10:00.
    """

    def __init__(
        self, context: SourceContext, timeframe: Timeframe, calendar: MarketCalendar, after: datetime, until: datetime
    ) -> None:
        self.after, self.until = after, until
        # Bars that close in (after, until] started at most a bar's length (a day for daily bars) before.
        reach = timeframe.length if timeframe.intraday else timedelta(days=1)
        with context.warehouse.connect() as con:
            bars = query_frame(
                con,
                "read/bars_between",
                {
                    "timeframe": timeframe.value,
                    "after": after - reach,
                    "until": until,
                    "symbols": list(context.settings.engine.watchlist),
                },
            )
        self._closes: dict[datetime, dict[str, Bar]] = {}
        for start, symbol, open_, high, low, close, volume in bars.iter_rows():
            closes = calendar.bar_close(symbol, timeframe, start)
            if after < closes <= until:
                opened = start if timeframe.intraday else _opened(calendar, symbol, start, closes)
                self._closes.setdefault(closes, {})[symbol] = Bar(opened, open_, high, low, close, volume)
        self._times = sorted(self._closes)

    def covers(self, after: datetime, until: datetime) -> bool:
        return self.after <= after and until <= self.until

    def between(self, after: datetime, until: datetime) -> list[tuple[datetime, dict[str, Bar]]]:
        """Each moment in (after, until] at which bars closed, with those bars, oldest first."""
        first, stop = bisect_right(self._times, after), bisect_right(self._times, until)
        return [(moment, self._closes[moment]) for moment in self._times[first:stop]]


def _opened(calendar: MarketCalendar, symbol: str, start: datetime, closes: datetime) -> datetime:
    """When a daily bar's open price traded: its session's open for an equity, its start for crypto."""
    if is_crypto(symbol):
        return start
    return calendar.equities.open_of(calendar.equities.closed_by(closes) - 1)


def preload(job: TradingJob, first: datetime, last: datetime) -> None:
    """Load once what every cycle from `first` to `last` reads: a replay's chunk of history."""
    context = job.context
    job.history = load_history(context.warehouse, context.settings.engine, first, last)
    broker = job.sim_broker
    if broker is not None:
        job.tape = MarketTape(context, _timeframe(job), job.session.calendar, _seen_until(job, first), last)


def advance_sim_broker(job: TradingJob, now: datetime) -> None:
    """Hand the simulated broker every stored bar it has not seen that closed by `now`."""
    broker = job.sim_broker
    if broker is None:
        return
    after = _seen_until(job, now)
    tape = job.tape if job.tape is not None and job.tape.covers(after, now) else None
    for moment, bars in (tape or MarketTape(job.context, _timeframe(job), job.session.calendar, after, now)).between(
        after, now
    ):
        broker.on_bar(bars, moment)
    if broker.now is None or broker.now < now:
        # The cycle's clock, where no bar closes at it (a daily cycle at a session's open): orders
        # are sent, and market hours checked, at the moment they are decided.
        broker.on_bar({}, now)


def _timeframe(job: TradingJob) -> Timeframe:
    return job.context.settings.engine.timeframe


def _seen_until(job: TradingJob, now: datetime) -> datetime:
    """Up to when the simulated broker has seen bars close. A new account needs only the bars
    that closed in the last bar's span (a day for daily bars): it holds nothing yet, and orders
    fill after they are sent."""
    broker = job.sim_broker
    if broker is not None and broker.now is not None:
        return broker.now
    timeframe = _timeframe(job)
    return now - (timeframe.length if timeframe.intraday else timedelta(days=1))


def adopt_unrecorded_orders(job: TradingJob, now: datetime, recorded_at: datetime) -> list[Discrepancy]:
    """Once per process: the broker's HYDRA orders no run recorded are recorded and followed."""
    if job.adopted:
        return []
    job.adopted = True
    return job.session.adopt_unrecorded_orders(now, recorded_at)


def decide(job: TradingJob, now: datetime, recorded_at: datetime) -> CycleRecord:
    """Read the snapshot as of `now`, run one cycle, submit and record (the simulated account with
    each record, in its transaction)."""
    started = time.perf_counter()
    snapshot = load_snapshot(job.context.warehouse, job.context.settings.engine, now, job.history)
    read_ms = (time.perf_counter() - started) * 1000
    record = job.session.step_and_record(snapshot, now, recorded_at)
    return replace(record, timings_ms={"read": read_ms, **record.timings_ms}, feed_health=snapshot.feed_health)


def flush(job: TradingJob, now: datetime) -> None:
    """A replay's held rows and its simulated account, written in one transaction."""
    buffer = job.session.buffer
    if buffer is None:
        return  # each cycle wrote its rows, and the account with them
    for kept in job.session.kept_with_records(now):
        buffer.keep_state(kept)
    buffer.flush(job.context.warehouse)


def record_run(
    context: SourceContext,
    run_id: str,
    mode: Mode,
    label: str,
    *,
    status: str,
    window: tuple[datetime | None, datetime | None] = (None, None),
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    parent_run_id: str | None = None,
    owner: Owner | None = None,
    reason: str | None = None,
) -> None:
    """The run's row; `owner` is the process that carries it from start to end (a replay), whose
    disappearance marks it failed (hydra.runs)."""
    settings = context.settings
    moment = datetime.now(UTC)
    with context.warehouse.connect() as con, in_transaction(con):
        con.execute(
            read_sql("record/run"),
            {
                "run_id": run_id,
                "parent_run_id": parent_run_id,
                "mode": mode.value,
                "label": label,
                "profile": settings.risk.profile.value,
                "config": settings.model_dump_json(),
                "limits": settings.risk.limits.model_dump_json(),
                "window_start": window[0],
                "window_end": window[1],
                "started_at": started_at or moment,
                "ended_at": ended_at,
                "status": status,
            },
        )
        con.execute(
            read_sql("record/run_owner"),
            {
                "run_id": run_id,
                "owner_pid": None if owner is None else owner.pid,
                "owner_host": None if owner is None else owner.host,
                "heartbeat_at": None if owner is None else moment,
                "status_reason": reason,
            },
        )


def check_strategies(context: SourceContext, run_id: str, start: datetime, end: datetime) -> tuple[Availability, ...]:
    """Which strategies can decide on the data a run over [start, end] reads, and why the others
    cannot (core.strategy.availability); recorded with the run in run_strategies.

    Every path that starts a run calls this: a replay (backtests, sweep and walk-forward points,
    `hydra run` in sim) as it starts, and `hydra run` in paper once its feeds are first ingested,
    then after each ingestion while a strategy lacks data.
    """
    engine = context.settings.engine
    windows = decision_windows(engine, market_calendar().equities)
    tables = sorted({table for strategy in REGISTRY for table in strategy.inputs} - {"bars"})
    with context.warehouse.connect() as con:
        table_rows = {}
        for table in tables:
            window = {"table": table, "since": start - windows.facts, "until": end}
            (count,) = con.execute(read_sql("read/window_rows"), window).fetchall()[0]
            table_rows[table] = int(count)
        bars = query_frame(
            con,
            "read/window_bars",
            {
                "timeframe": windows.timeframe,
                "bars_since": windows.bars_since(start),
                "day_since": windows.daily_bars_since(start),
                "until": end,
            },
        )
    counts = {(symbol, timeframe): int(n) for symbol, timeframe, n in bars.iter_rows()}
    cycle_bars = sum(n for (_, timeframe), n in counts.items() if timeframe == engine.timeframe)
    data = WindowData({**table_rows, "bars": cycle_bars}, counts, engine.timeframe)
    found = availability(REGISTRY, engine.strategies, data)
    record_availability(context.warehouse, run_id, found, datetime.now(UTC))
    return found


def trade_log(context: SourceContext, run_id: str) -> dict[str, Any]:
    """The run's JSON trade log: the run (which strategies could run and how they did, first), then
    every round trip with its orders and fills."""
    with context.warehouse.connect(read_only=True) as con:
        run = query_frame(con, "report/run_overview", {"run_id": run_id}).to_dicts()
        strategies = query_frame(con, "report/run_strategies", {"run_id": run_id}).to_dicts()
        trades = query_frame(con, "report/trade_log", {"run_id": run_id}).to_dicts()
    overview = {"strategies": strategies, **run[0]} if run else None
    return {"run_id": run_id, "overview": overview, "trades": trades}


def write_trade_log(context: SourceContext, run_id: str, path: Path | None = None) -> Path:
    target = path or context.settings.warehouse.path.parent / "trade_logs" / f"{run_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(trade_log(context, run_id), indent=2, default=_json_value)
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    temporary.replace(target)  # a reader never sees half a log
    return target


def _json_value(value: object) -> str | float:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):  # DuckDB's sums of integers
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def failure_kind(error: Exception) -> str:
    """How an alert names a failed cycle: a broker failure is worth saying so."""
    return "Broker error" if isinstance(error, BrokerError) else "Trading cycle failed"


def due_feeds(schedules: Mapping[str, int], last_started: Mapping[str, datetime], now: datetime) -> list[str]:
    """Feeds whose interval has passed since their last run in this loop (all of them at first)."""
    return [
        feed
        for feed, interval in schedules.items()
        if feed not in last_started or now - last_started[feed] >= timedelta(seconds=interval)
    ]


def every_minute(
    cycle: Callable[[datetime], None],
    cycles: int | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call `cycle` at each minute (a few seconds in, once the minute's bars are out) until
    `cycles` calls were made (None: until interrupted). Returns the number of calls."""
    done = 0
    while cycles is None or done < cycles:
        cycle(clock())
        done += 1
        if cycles is not None and done >= cycles:
            break
        moment = clock()
        next_minute = moment.replace(second=0, microsecond=0) + MINUTE + BAR_SETTLE
        sleep(max(0.0, (next_minute - moment).total_seconds()))
    return done
