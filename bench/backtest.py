"""Replay throughput of the full HYDRA cycle (five strategies, regime, risk, positions), 19 assets.

    .venv/bin/python -m bench.backtest [--hours H | --weeks W] [--cycle-minutes M ...] [--floor] [--out bench/results]

Two windows of simulated history, each after a week of warm-up history:
- `--hours H` (default 6.5): one US session from its open, where every one of the 19 assets
  has a bar every minute: the busiest window there is, a cycle per minute decides on 19 new bars;
- `--weeks W`: W whole weeks from a Monday 00:00 UTC, the issue's size (38 weeks hold about
  19 x 100k minute bars: the simulator's equities trade 390 minutes a weekday, crypto always).
  Results go to backtest-weeks.json|md, so the two reports live side by side.

History is ingested in a child process, a week at a time, so this process's peak memory is the
replays' alone; then `hydra.backtesting.run_backtest` replays the window once per cycle length.
Reported per cycle length: cycles per second, asset-bars per second (the stored minute bars of
the window, every one of which the simulated broker and the position manager go through, over
the wall time), CPU seconds, the process's peak resident memory after that replay, and what
the cycles had to act on (sql/report/cycle_activity.sql: the share of cycles with a proposal,
with an order, holding a position), and the resident memory after each week of the window.

`--floor` replays each cycle length a second time with every strategy disabled: what a cycle
costs with nothing to decide (the point-in-time read, the market's views, the regime, the risk
state, the simulated broker, the records). No strategy, however fast, takes a replay past that
figure, so it is the ceiling of a design that runs the cycle once per decision time. No figure
here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._report import current_rss_mb, peak_rss_mb, run_machine, write_files

TARGET_ASSET_BARS_PER_S = 500_000
WARM_UP = timedelta(days=7)
WEEK = timedelta(days=7)  # of history per ingestion, and between two samples of memory


def window(hours: float | None, weeks: int | None) -> tuple[timedelta, timedelta]:
    """Start and end of the replayed window, as offsets from the simulator's start (a Monday):
    `weeks` from the end of the warm-up, or `hours` from the open of the session after it."""
    if weeks is not None:
        return WARM_UP, WARM_UP + timedelta(weeks=weeks)
    from core.calendar import market_calendar
    from hydra.settings import SimConfig

    first = SimConfig().start
    start = market_calendar().equities.next_open(first + WARM_UP) - first
    return start, start + timedelta(hours=hours or 6.5)


def ingest_history(home: str, end_offset: timedelta) -> None:
    """The warm-up and the window, a week per ingestion (in a child process: see the docstring)."""
    os.chdir(home)
    from hydra.context import load_context
    from hydra.jobs import ingest_simulated

    context = load_context()
    first = context.settings.sim.start
    end = first + end_offset
    while first < end:
        step_end = min(first + WEEK, end)
        ingest_simulated(context, first, step_end)
        first = step_end


def run(hours: float | None, weeks: int | None, cycle_minutes: list[int], floor: bool, out: Path) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    # Settings are read from the working directory: the benchmark gets a fresh one of its own.
    home = tempfile.mkdtemp(prefix="hydra-bench-backtest-")
    start_offset, end_offset = window(hours, weeks)
    ingestion = multiprocessing.get_context("spawn").Process(target=ingest_history, args=(home, end_offset))
    started = time.perf_counter()
    ingestion.start()
    ingestion.join()
    if ingestion.exitcode != 0:
        raise RuntimeError(f"ingesting the simulated history failed (exit code {ingestion.exitcode})")
    ingest_s = time.perf_counter() - started
    os.chdir(home)
    from hydra.backtesting import run_backtest
    from hydra.context import load_context
    from hydra.settings import with_overrides
    from strategies import REGISTRY
    from warehouse.read import query_frame
    from warehouse.sqlfiles import read_sql

    context = load_context()
    start, end = context.settings.sim.start + start_offset, context.settings.sim.start + end_offset
    with context.warehouse.connect(read_only=True) as con:
        (asset_bars,) = con.execute(
            read_sql("read/bars_count"), {"timeframe": "1Min", "after": start, "until": end}
        ).fetchall()[0]
    no_strategy = {f"engine.strategies.{strategy.name}.enabled": False for strategy in REGISTRY}
    runs = []
    for minutes, strategies in itertools.product(cycle_minutes, (True, False) if floor else (True,)):
        overrides = {"sim.cycle_minutes": minutes, **({} if strategies else no_strategy)}
        replaying = load_context(with_overrides(context.settings, overrides))
        wall, cpu = time.perf_counter(), time.process_time()
        rss_by_week: list[float | None] = []
        result = run_backtest(
            replaying, start, end, progress=memory_sampler(WEEK // timedelta(minutes=minutes), rss_by_week)
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with context.warehouse.connect(read_only=True) as con:
            activity = query_frame(con, "report/cycle_activity", {"run_id": result.run_id}).row(0, named=True)
        runs.append(
            {
                "cycle_minutes": minutes,
                "strategies": strategies,
                "cycles": result.cycles,
                "orders": result.overview["orders"],
                "signals_per_cycle": round(activity["signals_per_cycle"] or 0.0, 1),
                "cycles_with_proposal_pct": percent(activity["with_proposal"], result.cycles),
                "cycles_with_order_pct": percent(activity["with_order"], result.cycles),
                "cycles_holding_pct": percent(activity["holding"], result.cycles),
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "cycles_per_s": round(result.cycles / wall, 1),
                "asset_bars_per_s": round(asset_bars / wall),
                "target_over_reached": round(TARGET_ASSET_BARS_PER_S / (asset_bars / wall), 1),
                "peak_rss_mb_after": peak_rss_mb(),
                "rss_mb_after_each_week": rss_by_week,
            }
        )
    report = {
        "benchmark": "backtest",
        "what": "full HYDRA cycle replay (hydra backtest), 19 assets, five strategies",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": hours, "weeks": weeks},
        "asset_bars": asset_bars,
        "ingest_s": round(ingest_s, 1),
        "runs": runs,
        "target_asset_bars_per_s": TARGET_ASSET_BARS_PER_S,
        "machine": run_machine(("duckdb", "polars", "numpy"), load_at_start),
    }
    stem = "backtest" if weeks is None else "backtest-weeks"
    write_files(out, {f"{stem}.json": json.dumps(report, indent=2) + "\n", f"{stem}.md": markdown(report)})
    return report


def memory_sampler(every: int, samples: list[float | None]) -> Callable[[int, int], None]:
    """A replay's progress hook that notes the resident memory after every `every` cycles."""

    def sample(done: int, _total: int) -> None:
        if done % every == 0:
            samples.append(current_rss_mb())

    return sample


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def label(run: dict[str, Any]) -> str:
    return f"{run['cycle_minutes']} min" + ("" if run["strategies"] else ", no strategy")


def markdown(report: dict[str, Any]) -> str:
    machine, window = report["machine"], report["window"]
    span = f"{window['weeks']} weeks" if window["weeks"] is not None else f"{window['hours']} h of one session"
    lines = [
        f"# {report['what']}",
        "",
        f"{report['date']}: {span} replayed ({window['start']} to {window['end']}), "
        f"{report['asset_bars']:,} asset-bars; {machine['cores']} cores, Python {machine['python']}, "
        f"load {machine['load_avg_start'][0]:.1f} at start, {machine['load_avg_end'][0]:.1f} at end.",
        "",
        "| cycle every | cycles | orders | wall s | CPU s | cycles/s | asset-bars/s | target / reached | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {label(run)} | {run['cycles']} | {run['orders']} | {run['wall_s']} | {run['cpu_s']} | "
            f"{run['cycles_per_s']} | {run['asset_bars_per_s']:,} | {run['target_over_reached']}x | "
            f"{run['peak_rss_mb_after']} |"
        )
    lines += [
        "",
        "What the cycles had to act on (what a replay that woke only for it would still run):",
        "",
        "| cycle every | signals a cycle | cycles with a proposal | with an order | holding a position |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {label(run)} | {run['signals_per_cycle']} | {run['cycles_with_proposal_pct']}% | "
            f"{run['cycles_with_order_pct']}% | {run['cycles_holding_pct']}% |"
        )
    lines += ["", "Resident memory after each week of the window, MB:", ""]
    for run in report["runs"]:
        weekly = ", ".join(f"{mb:g}" for mb in run["rss_mb_after_each_week"] if mb is not None) or "-"
        lines.append(f"- every {label(run)}: {weekly}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--hours", type=float, default=None, help="one session from its open (default 6.5)")
    span.add_argument("--weeks", type=int, default=None, help="whole weeks (38 = the issue's 19 x 100k bars)")
    parser.add_argument("--cycle-minutes", type=int, nargs="+", default=[15, 5, 1])
    parser.add_argument(
        "--floor", action="store_true", help="replay each cycle length again with every strategy disabled"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    report = run(args.hours, args.weeks, args.cycle_minutes, args.floor, args.out.resolve())
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
