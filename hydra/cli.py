"""`hydra`: the command line. Every expected failure is one clear line and a non-zero exit."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from core.config import Mode
from hydra.context import load_context, open_warehouse
from hydra.settings import ConfigError, HydraSettings, load_secrets, load_settings
from hydra.sources import FEEDS
from warehouse import WarehouseError
from warehouse.migrate import installed_version, latest_known_version, migrate
from warehouse.read import last_ingestions, table_row_counts

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="HYDRA: regime-adaptive multi-strategy trading engine."
)
console = Console()
errors = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_WAREHOUSE = 3
EXIT_SQL = 4


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


@app.command()
def run() -> None:
    """The main job. In sim mode: simulate markets, trade them through the full decision path, summarise."""
    loaded = settings()
    if loaded.mode is not Mode.SIM:
        fail(f"hydra run trades only in sim mode so far (mode is {loaded.mode.value}); paper trading is not wired", 2)
    from hydra.simulation import run_simulation  # the strategies and the broker load only for commands that trade

    with clear_errors():
        outcome = run_simulation(load_context())
    overview = outcome.overview
    console.print(
        f"run {outcome.run_id}: {outcome.cycles} cycles every {loaded.sim.cycle_minutes} simulated minutes, "
        f"{outcome.trading_start:%Y-%m-%d %H:%M} .. {outcome.trading_end:%Y-%m-%d %H:%M} UTC "
        f"(seed {loaded.sim.seed}, {loaded.sim.warmup_days:g} days of warm-up history)"
    )
    summary = Table(title="run")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    for name, value in overview.items():
        summary.add_row(name, _cell(round(value, 4) if isinstance(value, float) else value))
    console.print(summary)
    console.print(_rich_table(outcome.orders_by_strategy, title="orders by strategy"))
    console.print(f"warehouse: {loaded.warehouse.path.resolve()}  (query it: hydra sql, hydra status)")


DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
EXIT_FEED = 5


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
    from flows.ingest import ingest_all  # Prefect costs seconds to import: only commands that run flows pay

    with clear_errors():
        state = ingest_all(chosen, window[0], window[1], return_state=True)
        runs = last_ingestions(open_warehouse(loaded)).filter(pl.col("feed").is_in(chosen))
    console.print(_rich_table(runs.drop("started_at", "finished_at"), title="ingestion"))
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
    """Warehouse path, schema version, tables and row counts, the last ingestion of every feed."""
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
    console.print(_rich_table(ingestions, title="last ingestion per feed"))


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


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
