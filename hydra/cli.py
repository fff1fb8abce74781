"""`hydra`: the command line. Every expected failure is one clear line and a non-zero exit."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from core.config import Mode, RiskProfile
from core.readiness import Readiness
from core.strategy import Availability
from core.types import Reason, ReasonCode
from hydra.context import load_context, open_warehouse
from hydra.orchestration import PrefectUnavailable, configure_prefect, start_prefect
from hydra.runs import DeadRun, newest_settled_run
from hydra.settings import ConfigError, HydraSettings, load_secrets, load_settings, with_overrides
from hydra.sources import FEEDS, in_dependency_order
from warehouse import Warehouse, WarehouseError, WarehouseTooNewError
from warehouse.migrate import installed_version, latest_known_version, migrate
from warehouse.read import last_ingestions, query_frame, table_row_counts

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="HYDRA: regime-adaptive multi-strategy trading engine."
)
console = Console()
errors = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_WAREHOUSE = 3
EXIT_SQL = 4
EXIT_FEED = 5
EXIT_TRADE = 6
EXIT_PREFECT = 7
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a process stopped by SIGINT
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def fail(message: str, code: int) -> NoReturn:
    errors.print(f"hydra: {message}", style="red", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the failures a user can cause into one line on stderr and an exit code."""
    try:
        yield
    except ConfigError as error:
        fail(f"config error: {error}", EXIT_CONFIG)
    except WarehouseError as error:
        fail(f"warehouse error: {error}", EXIT_WAREHOUSE)
    except PrefectUnavailable as error:
        fail(str(error), EXIT_PREFECT)


def start_flows() -> None:
    """Before a command's first flow: Prefect's temporary server, whose failure to start is one line."""
    with clear_errors():
        start_prefect()


def settings() -> HydraSettings:
    with clear_errors():
        return load_settings()


@app.command()
def init() -> None:
    """Create the warehouse or bring it to the current schema (safe to run again)."""
    loaded = settings()
    with clear_errors():
        applied = migrate(open_warehouse(loaded))
    if applied:
        console.print(f"initialised {loaded.warehouse.path}: applied {', '.join(applied)}")
    else:
        console.print(f"{loaded.warehouse.path} is already at schema version {latest_known_version()}")


@app.command("config")
def show_config() -> None:
    """Print the effective configuration (defaults < hydra.toml < environment), secrets masked."""
    loaded = settings()
    console.print_json(loaded.model_dump_json())
    console.print_json(json.dumps(load_secrets().masked()))


MODE_OPTION = typer.Option("--mode", help="sim or paper (default: the configured mode)")


@app.command()
def run(
    mode: Annotated[Mode | None, MODE_OPTION] = None,
    cycles: Annotated[int | None, typer.Option(min=1, help="paper: stop after this many minutes")] = None,
) -> None:
    """The main job. sim: simulate markets, trade them through the full decision path, summarise.
    paper: every minute, ingest the feeds that are due and run one trading cycle against Alpaca paper."""
    loaded = settings_for(mode)
    if loaded.mode is Mode.PAPER:
        paper_loop(loaded, cycles)
        return
    if loaded.mode is not Mode.SIM:
        fail(f"hydra run trades in sim or paper mode, not {loaded.mode.value}; backtests are not built yet", 2)
    from hydra.simulation import run_simulation  # the strategies and the broker load only for commands that trade

    with clear_errors():
        outcome = run_simulation(load_context(loaded))
    overview = outcome.overview
    _print_strategies(outcome.strategies)
    console.print(
        f"run {outcome.run_id}: {outcome.cycles} cycles every {loaded.sim.cycle_minutes} simulated minutes, "
        f"{outcome.start:%Y-%m-%d %H:%M} .. {outcome.end:%Y-%m-%d %H:%M} UTC "
        f"(seed {loaded.sim.seed}, {loaded.sim.warmup_sessions} sessions of warm-up history)"
    )
    _print_overview(overview, outcome.orders_by_strategy)
    console.print(f"trade log: {outcome.trade_log.resolve()}")
    console.print(f"warehouse: {loaded.warehouse.path.resolve()}  (query it: hydra sql, hydra status)")


@app.command()
def trade(
    once: Annotated[bool, typer.Option("--once", help="run exactly one cycle, then exit")] = False,
    mode: Annotated[Mode | None, MODE_OPTION] = None,
    at: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="decide as of this UTC time (default: now)")
    ] = None,
    reset_clock: Annotated[
        bool,
        typer.Option(
            "--reset-clock", help="a session whose last decision lies in the future: set its clock back, then exit"
        ),
    ] = False,
) -> None:
    """The trading flow: one cycle with --once, else one every minute (ingestion runs elsewhere)."""
    loaded = settings_for(mode)
    if loaded.mode not in (Mode.SIM, Mode.PAPER):
        fail(f"hydra trade runs in sim or paper mode, not {loaded.mode.value}", EXIT_CONFIG)
    if reset_clock:
        _reset_clock(loaded)
        return
    if loaded.mode is Mode.PAPER:
        _require_alpaca_keys()
    moment = None if at is None else at.replace(tzinfo=UTC)
    if moment is not None:
        _refuse_ahead(loaded, moment)
    start_flows()
    if once:
        _trade_cycle(loaded.mode, moment)
        return
    trading_loop(loaded.mode, None, at=moment)


def _refuse_ahead(loaded: HydraSettings, at: datetime) -> None:
    """A decision time after the world's clock, refused before any flow starts (the flow refuses it too)."""
    from hydra.live import DecisionAhead, NoMarketData, decision_time, world_clock

    with clear_errors():
        context = load_context(loaded)
        migrate(context.warehouse)
        try:
            decision_time(loaded.mode, at, world_clock(context, loaded.mode, datetime.now(UTC)))
        except DecisionAhead as refused:
            fail(str(refused), EXIT_CONFIG)
        except NoMarketData:
            pass  # the flow says so, as for any cycle


def _reset_clock(loaded: HydraSettings) -> None:
    from hydra.live import NoMarketData, reset_clock, session_run_id

    run_id = session_run_id(loaded, loaded.mode)
    with clear_errors():
        context = load_context(loaded)
        migrate(context.warehouse)
        try:
            was = reset_clock(context, loaded.mode, run_id, datetime.now(UTC))
        except NoMarketData as missing:
            fail(str(missing), EXIT_WAREHOUSE)
    if was is None:
        console.print(f"run {run_id}: its clock is not ahead of the world's; nothing to reset")
    else:
        console.print(f"run {run_id}: clock set back from {was.isoformat()} to its last decision before now")


@app.command()
def backtest(
    start: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS, help="replay from (UTC)")] = None,
    end: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS, help="replay until (UTC)")] = None,
    profile: Annotated[RiskProfile | None, typer.Option(help="risk profile for this run")] = None,
    slippage_bps: Annotated[float | None, typer.Option(min=0, help="simulated slippage")] = None,
    fee_bps: Annotated[float | None, typer.Option(min=0, help="simulated fees")] = None,
    cycle_minutes: Annotated[int | None, typer.Option(min=1, help="minutes between decisions")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="replay your own data instead: a bar file (.parquet, .csv) or a folder of one file per table"
        ),
    ] = None,
    sweep: Annotated[Path | None, typer.Option(help="a sweep file: a window and a grid of settings")] = None,
    walk_forward: Annotated[
        bool, typer.Option("--walk-forward", help="train/test windows over --start..--end")
    ] = False,
    train: Annotated[str, typer.Option(help="walk-forward training window, e.g. 60d or 12h")] = "60d",
    test: Annotated[str, typer.Option(help="walk-forward test window, e.g. 20d")] = "20d",
    dask_address: Annotated[
        str | None, typer.Option(help="an existing Dask scheduler (default: a local cluster)")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="local Dask workers (default: one per core)")] = None,
) -> None:
    """Replay the warehouse's history through the live decision path; results under a backtest run id.

    --sweep runs every point of a grid in parallel on Dask; --walk-forward chooses settings (the
    sweep's grid, if given) on each training window, then trades the next test window out of sample."""
    options = {
        "engine.risk.profile": profile,
        "sim.slippage_bps": slippage_bps,
        "sim.fee_bps": fee_bps,
        "sim.cycle_minutes": cycle_minutes,
    }
    overrides = {k: v.value if isinstance(v, RiskProfile) else v for k, v in options.items() if v is not None}
    with clear_errors():
        loaded = with_overrides(settings(), overrides)
    window = None if start is None or end is None else (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
    if window is not None and window[0] >= window[1]:
        fail("--start must be before --end", EXIT_CONFIG)
    if sweep is not None:
        from hydra.sweeps import read_sweep_file

        with clear_errors():
            read_sweep_file(sweep, loaded)  # a bad file or grid is refused before any flow starts
    if sweep is not None and not walk_forward:
        _sweep(sweep, overrides, dask_address, workers)
        return
    if window is None:
        fail("--start and --end are required (only a sweep file brings its own window)", EXIT_CONFIG)
    if walk_forward:
        _walk_forward(window, _days(train, "--train"), _days(test, "--test"), sweep, overrides, dask_address, workers)
        return
    _replay(loaded, window, data)


def _replay(loaded: HydraSettings, window: tuple[datetime, datetime], data: Path | None) -> None:
    from adapters.table_file import TableFileError
    from hydra.backtesting import NoHistory, run_backtest, run_backtest_on_data

    columns = (TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with clear_errors(), Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task("cycles", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        context = load_context(loaded)
        try:
            if data is None:
                outcome = run_backtest(context, *window, progress=advance)
            else:
                from_data = run_backtest_on_data(context, data, *window, progress=advance)
                outcome = from_data.result
        except TableFileError as bad_file:
            fail(str(bad_file), EXIT_CONFIG)
        except NoHistory as missing:
            fail(str(missing), EXIT_WAREHOUSE)
        except KeyboardInterrupt:
            fail(
                "backtest interrupted: its run is recorded as aborted, with the cycles written so far", EXIT_INTERRUPTED
            )
    _print_strategies(outcome.strategies)
    if data is not None:
        for load in from_data.loads:
            console.print(f"{load.path}: {load.loaded} {load.table} loaded, {load.quarantined} quarantined")
        console.print(f"scratch warehouse {from_data.scratch}{', loaded before: reused' if from_data.reused else ''}")
    console.print(
        f"backtest {outcome.run_id}: {outcome.cycles} cycles {outcome.cadence}, "
        f"{outcome.start:%Y-%m-%d %H:%M} .. {outcome.end:%Y-%m-%d %H:%M} UTC, profile {loaded.risk.profile.value}"
    )
    _print_overview(outcome.overview, outcome.orders_by_strategy)
    console.print(f"warehouse: {loaded.warehouse.path.resolve()}  (rows under run_id = '{outcome.run_id}')")


def _sweep(path: Path, overrides: dict[str, Any], dask_address: str | None, workers: int | None) -> None:
    start_flows()
    from flows.backtest import sweep as sweep_flow

    state = sweep_flow(str(path), overrides, dask_address, workers, return_state=True)
    rows = _flow_result(state, "sweep")
    console.print(_rich_table(pl.DataFrame(rows), title=f"sweep {rows[0]['sweep'] if rows else ''}: best first"))


def _walk_forward(
    window: tuple[datetime, datetime],
    train_days: float,
    test_days: float,
    grid: Path | None,
    overrides: dict[str, Any],
    dask_address: str | None,
    workers: int | None,
) -> None:
    start_flows()
    from flows.backtest import walk_forward as walk_forward_flow

    state = walk_forward_flow(
        *window, train_days, test_days, str(grid) if grid else None, overrides, dask_address, workers, return_state=True
    )
    outcome = _flow_result(state, "walk-forward")
    console.print(_rich_table(pl.DataFrame(outcome["windows"]), title=f"walk-forward {outcome['walk_forward']}"))
    console.print_json(json.dumps({"stitched": outcome["stitched"]}))


def _flow_result(state: Any, what: str) -> Any:
    if state.is_failed() or state.is_crashed():
        fail(f"{what} failed: {_first_line(state.message or 'see the flow run')}", EXIT_TRADE)
    return state.result()


def _days(text: str, option: str) -> float:
    """'60d', '12h' or a plain number of days."""
    units = {"d": 1.0, "h": 1 / 24}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        fail(f"{option} {text!r}: use days or hours, like 60d or 12h", EXIT_CONFIG)


@app.command()
def report(
    run_id: Annotated[str | None, typer.Option("--run", help="the run (default: the newest)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="directory (default: data/reports)")] = None,
) -> None:
    """A run's HTML tearsheet (self-contained, opens offline) and PNG charts."""
    loaded = settings()
    from hydra.report import NoRun, build_report, load_report_data

    with clear_errors():
        warehouse = open_warehouse(loaded)
        chosen = run_id or _newest_run(warehouse)
        if chosen is None:
            fail("the warehouse holds no runs yet: run `hydra run` or `hydra backtest` first", EXIT_WAREHOUSE)
        try:
            data = load_report_data(warehouse, loaded, chosen)
        except NoRun as missing:
            fail(str(missing), EXIT_WAREHOUSE)
        built = build_report(data, out or loaded.warehouse.path.parent / "reports")
    console.print(f"report of {chosen}: {built.html.resolve()}")
    for chart in built.charts:
        console.print(f"chart: {chart.resolve()}")


@app.command()
def serve(
    limit: Annotated[int | None, typer.Option(min=1, help="flow runs executing at once (default: no cap)")] = None,
) -> None:
    """Serve every deployment of prefect.yaml from this process until Ctrl-C (flow runs are subprocesses)."""
    settings()  # a bad configuration stops here, not in every scheduled run
    from hydra.serving import serve_all

    serve_all(limit)


@app.command("trade-log")
def trade_log(
    run_id: Annotated[str | None, typer.Argument(help="the run (default: the newest)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write here (default: next to the warehouse)")] = None,
) -> None:
    """Export a run's JSON trade log (round trips with their orders and fills) from the warehouse."""
    loaded = settings()
    from hydra.live import write_trade_log

    with clear_errors():
        context = load_context(loaded)
        chosen = run_id or _newest_run(context.warehouse)
        if chosen is None:
            fail("the warehouse holds no runs yet: run `hydra run` or `hydra trade --once` first", EXIT_WAREHOUSE)
        path = write_trade_log(context, chosen, out)
    console.print(f"trade log of {chosen}: {path.resolve()}")


def _newest_run(warehouse: Warehouse) -> str | None:
    """The newest run worth a report, once runs whose process died are marked failed (said in a line each)."""
    chosen, dead = newest_settled_run(warehouse)
    _say_dead(dead)
    return chosen


def _say_dead(dead: list[DeadRun]) -> None:
    for run in dead:
        errors.print(f"run {run.run_id} marked failed: {run.reason}", highlight=False, markup=False, soft_wrap=True)


def _print_strategies(strategies: pl.DataFrame) -> None:
    """Which strategies can decide on the run's data and why the others cannot (report/run_strategies);
    once cycles ran, in how many each decided and why it abstained most often."""
    table = Table(title="strategies on this data")
    for column in ("strategy", "can run", "reason", "cycles decided", "most frequent abstention"):
        table.add_column(column)
    for row in strategies.iter_rows(named=True):
        table.add_row(
            row["strategy"],
            {True: "yes", False: "no"}.get(row["can_run"], "not checked"),
            ": ".join(part for part in (row["code"], row["detail"]) if part),
            str(row["cycles_decided"]),
            row["top_abstention"] or "",
        )
    console.print(table)


def _print_overview(overview: dict[str, object], orders_by_strategy: pl.DataFrame) -> None:
    summary = Table(title="run")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    for name, value in overview.items():
        summary.add_row(name, _cell(round(value, 4) if isinstance(value, float) else value))
    console.print(summary)
    console.print(_rich_table(orders_by_strategy, title="orders by strategy"))


def settings_for(mode: Mode | None) -> HydraSettings:
    loaded = settings()
    return loaded if mode is None else loaded.model_copy(update={"mode": mode})


def _require_alpaca_keys() -> None:
    secrets = load_secrets()
    with clear_errors():
        secrets.require("alpaca_api_key")
        secrets.require("alpaca_secret_key")


def fatal(error: object) -> tuple[str, int] | None:
    """The one line and exit code of a condition no later cycle can get past, which ends a trading
    loop; None for a failure the next minute may not meet (a broker error, a lock held too long).

    The fatal set: the broker refusing the keys (HTTP 401, or 403 on the account), a warehouse
    newer than the code, a settings error, a decision time after the world's clock."""
    from adapters.alpaca_broker import CHECK_KEYS, AlpacaApiError
    from adapters.broker import BrokerUnauthorized
    from hydra.live import DecisionAhead

    if isinstance(error, BrokerUnauthorized):  # a 401 from any endpoint; its message says what to check
        return str(error), EXIT_CONFIG
    if isinstance(error, AlpacaApiError) and error.status_code == 403 and str(error).startswith("alpaca account:"):
        return f"{CHECK_KEYS} ({error})", EXIT_CONFIG
    if isinstance(error, ConfigError):
        return f"config error: {error}", EXIT_CONFIG
    if isinstance(error, DecisionAhead):
        return str(error), EXIT_CONFIG
    if isinstance(error, WarehouseTooNewError):
        return f"warehouse error: {error}", EXIT_WAREHOUSE
    return None


def _trade_cycle(mode: Mode, at: datetime | None, *, keep_going: bool = False) -> None:
    """One run of the trading flow, its summary printed. The flow records and alerts a failed run;
    here it ends the command with EXIT_TRADE, or, with `keep_going` (a loop), is said in a line
    and left to the next minute, unless it is fatal."""
    from flows.trade import trade as trade_flow  # Prefect costs seconds to import: only commands that run flows pay

    state = trade_flow(mode.value, at, return_state=True)
    if not (state.is_failed() or state.is_crashed()):
        console.print_json(json.dumps(state.result()))
        return
    error = state.result(raise_on_failure=False)
    ending = fatal(error)
    if ending is not None:
        fail(_first_line(ending[0]), ending[1])
    message = _first_line(error if isinstance(error, BaseException) else state.message or "see the flow run")
    if not keep_going:
        fail(f"trading cycle failed: {message}", EXIT_TRADE)
    errors.print(
        f"trading cycle failed (recorded in alerts; the loop goes on): {message}",
        style="yellow",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def trading_loop(
    mode: Mode,
    cycles: int | None,
    *,
    at: datetime | None = None,
    ingest: Callable[[datetime], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Every minute (`cycles` of them, or until Ctrl-C): `ingest`, then one trading cycle, deciding
    at `at`, else at the loop's minute when paper trading (the newest bar's close in sim). A failed
    cycle does not end the loop; a fatal one (`fatal`) ends the command with its exit code."""
    from hydra.live import every_minute

    def minute(now: datetime) -> None:
        if ingest is not None:
            ingest(now)
        paper_minute = now.replace(second=0, microsecond=0) if mode is Mode.PAPER else None
        _trade_cycle(mode, at or paper_minute, keep_going=True)

    try:
        every_minute(minute, cycles, clock, sleep)
    except KeyboardInterrupt:
        console.print("stopped")


def _check_paper_run(
    loaded: HydraSettings, now: datetime, before: tuple[Availability, ...]
) -> tuple[Availability, ...]:
    """Which strategies can run on what the feeds have loaded; printed when that changed."""
    from hydra.live import check_strategies, session_run_id

    context = load_context(loaded)
    run_id = session_run_id(loaded, Mode.PAPER)
    with clear_errors():
        found = check_strategies(context, run_id, now, now)
        with context.warehouse.connect(read_only=True) as con:
            strategies = query_frame(con, "report/run_strategies", {"run_id": run_id})
    if found != before:
        _print_strategies(strategies)
    return found


def paper_loop(
    loaded: HydraSettings,
    cycles: int | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """`hydra run --mode paper`: every minute the feeds that are due, then one trading cycle."""
    _require_alpaca_keys()
    with clear_errors():
        migrate(open_warehouse(loaded))  # a first run: the checks between feeds and trading read it
    start_flows()
    from flows.ingest import ingest_all
    from hydra.live import due_feeds

    schedules = loaded.feeds.schedules.model_dump()
    last_started: dict[str, datetime] = {}
    checked: list[tuple[Availability, ...]] = []  # the last check, once there was one

    def ingest(now: datetime) -> None:
        feeds = due_feeds(schedules, last_started, now)
        if feeds:
            # A failed feed is recorded in ingestion_runs and degrades its strategies; trading goes on.
            # Its next scheduled run is its retry: waiting out fetch retries here would hold up the minute.
            ingest_all(feeds, retry_fetches=False, return_state=True)
            last_started.update(dict.fromkeys(feeds, now))
            # Once every feed has run, and again after each ingestion while a strategy lacks data
            # (a feed that failed is retried on its schedule): the check follows the data.
            if not checked or any(found.waits_for_data for found in checked[-1]):
                checked[:] = [_check_paper_run(loaded, now, checked[-1] if checked else ())]

    console.print(f"paper trading every minute as {loaded.trading.session!r}; Ctrl-C stops after the current step")
    trading_loop(Mode.PAPER, cycles, ingest=ingest, clock=clock, sleep=sleep)


@app.command()
def ingest(
    feeds: Annotated[
        list[str] | None, typer.Argument(help=f"feeds to ingest (default all): {', '.join(FEEDS)}")
    ] = None,
    start: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS, help="backfill from (UTC)")] = None,
    end: Annotated[datetime | None, typer.Option(formats=DATE_FORMATS, help="backfill until (UTC)")] = None,
) -> None:
    """Run the ingestion flows locally: the real feeds in paper mode, the simulator in sim mode."""
    loaded = settings()
    chosen = feeds or list(FEEDS)
    unknown = sorted(set(chosen) - set(FEEDS))
    if unknown:
        fail(f"unknown feed(s) {', '.join(unknown)}; feeds are {', '.join(FEEDS)}", EXIT_CONFIG)
    window = [None if moment is None else moment.replace(tzinfo=UTC) for moment in (start, end)]
    if window[0] and window[1] and window[0] >= window[1]:
        fail("--start must be before --end", EXIT_CONFIG)
    with clear_errors():
        in_dependency_order(chosen)  # feeds that depend on each other in a ring: a config error, before any run
    start_flows()
    from flows.ingest import ingest_all  # Prefect costs seconds to import: only commands that run flows pay

    with clear_errors():
        state = ingest_all(chosen, window[0], window[1], return_state=True)
        runs = last_ingestions(open_warehouse(loaded)).filter(pl.col("feed").is_in(chosen))
    _print_ingestions(runs.drop("started_at", "finished_at"), "ingestion")
    if state.is_failed() or state.is_crashed():
        fail(f"ingestion failed: {state.message}", EXIT_FEED)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="a SQL query; the warehouse is opened read-only")],
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON rows")] = False,
) -> None:
    """Run an ad-hoc SQL query against the warehouse and print the result."""
    loaded = settings()
    with clear_errors(), open_warehouse(loaded).connect(read_only=True) as con:
        try:
            result = con.sql(query)
        except duckdb.Error as error:
            fail(f"SQL error: {_first_line(error)}", EXIT_SQL)
        frame = pl.DataFrame() if result is None else result.pl()
    if as_csv:
        _print_csv(frame)
    elif as_json:
        sys.stdout.write(frame.write_json() + "\n")
    else:
        console.print(_rich_table(frame))


@app.command()
def status() -> None:
    """Warehouse path, schema version, tables and row counts, the last ingestion of every feed, and
    trading readiness: the history a cycle reads, and what kept the session's newest cycle from trading."""
    loaded = settings()
    warehouse = open_warehouse(loaded)
    with clear_errors():
        with warehouse.connect(read_only=True) as con:
            version = installed_version(con)
        if version is None:
            fail(f"{warehouse.path} holds no HYDRA schema: run `hydra init`", EXIT_WAREHOUSE)
        counts = table_row_counts(warehouse)
        ingestions = last_ingestions(warehouse)
    console.print(f"warehouse: {warehouse.path.resolve()}  schema version {version}")
    counts_table = Table(title="tables")
    counts_table.add_column("table")
    counts_table.add_column("rows", justify="right")
    for name, count in counts.items():
        counts_table.add_row(name, f"{count:,}")
    console.print(counts_table)
    _print_ingestions(ingestions, "last ingestion per feed")
    if version < latest_known_version():
        console.print(f"trading readiness: schema version {version} predates it; `hydra init` migrates the warehouse")
        return
    with clear_errors():
        _print_readiness(loaded, warehouse)


def _print_readiness(loaded: HydraSettings, warehouse: Warehouse) -> None:
    """Trading readiness: the history a cycle reads, and what kept the session's newest cycle from trading."""
    from hydra.live import session_run_id
    from hydra.readiness import history_held, last_cycle_readiness

    run_id = session_run_id(loaded, loaded.mode)
    console.print(f"trading readiness of {run_id}", style="bold")
    for held in history_held(warehouse, loaded.engine, datetime.now(UTC)):
        console.print(str(held), markup=False, highlight=False, soft_wrap=True)
    cycle = last_cycle_readiness(warehouse, run_id)
    if cycle.is_empty():
        console.print(f"no cycle of {run_id} yet: `hydra trade --once` runs one")
        return
    last = cycle.row(0, named=True)
    console.print(f"last cycle {_cell(last['ts_event'])}: cycle {last['cycle_no']}, regime {last['regime']}")
    items = cycle.filter(pl.col("subject").is_not_null())
    if items.is_empty():
        console.print("nothing kept it from trading")
    for row in items.iter_rows(named=True):
        item = Readiness(row["subject"], Reason(ReasonCode(row["code"]), row["detail"] or ""), row["blocking"])
        line = str(item) if item.blocking else f"{item} (not blocking: it trades on what there is)"
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_ingestions(runs: pl.DataFrame, title: str) -> None:
    """Ingestion runs as a table, then what their sources could not give, a line each."""
    console.print(_rich_table(runs.drop("notes"), title=title))
    for notes in runs["notes"].to_list():
        for note in notes or []:
            console.print(note, markup=False, highlight=False, soft_wrap=True)


def _rich_table(frame: pl.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column)
    for row in frame.iter_rows():
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _print_csv(frame: pl.DataFrame) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(frame.columns)
    for row in frame.iter_rows():
        writer.writerow(["" if value is None else _cell(value) for value in row])


def _first_line(message: object) -> str:
    return (str(message).strip().splitlines() or [""])[0]


def main() -> None:
    configure_prefect()
    app()


if __name__ == "__main__":
    main()
