"""Decision time of one cycle for the 19-asset watchlist, all five strategies, on simulated data.

    .venv/bin/python -m bench.cycle [--cycles N] [--out bench/results]

Measures, per cycle of consecutive simulated minutes in US market hours:
- decide: `run_cycle` alone on a snapshot already in memory (the issue's figure; target
  under 10 ms median);
- read: building that snapshot from the warehouse (`hydra.decide.load_snapshot`), the
  live path's other half;
- split: a fresh snapshot's first split of its bars by symbol, which the cycle pays once;
- per strategy: each strategy's `evaluate` on fresh copies of the same snapshots, bars already
  split (as in a cycle, where the market view splits them first).
Each stage is timed in wall-clock and in CPU time of the process (`time.process_time`): on a
shared machine the wall clock counts other processes' turns, the CPU time does not (it does
count every thread of this one). Results go to <out>/cycle.json and <out>/cycle.md. No figure
here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.simulator import MarketSimulator
from core.book import Book
from core.config import EngineConfig
from core.pipeline import EngineState, run_cycle
from core.snapshot import MarketSnapshot
from core.strategy import StrategyContext
from hydra.context import market_calendar
from hydra.decide import load_snapshot
from strategies import REGISTRY
from warehouse import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

EPOCH = datetime(2026, 2, 23, tzinfo=UTC)
FIRST_CYCLE = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York, six sessions in
SEED = 42


def always_tradable(symbol: str, moment: datetime) -> bool:
    return True


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True, slots=True)
class Spent:
    wall: float
    cpu: float


def summary(spent: list[Spent]) -> dict[str, float]:
    wall = [s.wall * 1000 for s in spent]
    cpu = [s.cpu * 1000 for s in spent]
    return {
        "median_ms": statistics.median(wall),
        "p95_ms": percentile(wall, 0.95),
        "max_ms": max(wall),
        "cpu_median_ms": statistics.median(cpu),
        "cpu_p95_ms": percentile(cpu, 0.95),
        "n": len(spent),
    }


def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Spent]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = call(*args, **kwargs)
    return value, Spent(time.perf_counter() - wall, time.process_time() - cpu)


def fresh(snapshot: MarketSnapshot) -> MarketSnapshot:
    """The same snapshot with nothing derived from it yet."""
    return MarketSnapshot(snapshot.as_of, snapshot.tables, snapshot.feed_health)


def run(cycles: int, out: Path) -> dict[str, Any]:
    config = EngineConfig()
    frames = MarketSimulator(seed=SEED, epoch=EPOCH).generate(EPOCH, FIRST_CYCLE + timedelta(days=1))
    with tempfile.TemporaryDirectory() as folder:
        warehouse = Warehouse(Path(folder) / "bench.duckdb")
        migrate(warehouse)
        upsert(warehouse, frames)
        times = [FIRST_CYCLE + timedelta(minutes=i) for i in range(cycles)]
        snapshots: list[MarketSnapshot] = []
        reads = []
        for now in times:
            snapshot, seconds = timed(load_snapshot, warehouse, config, now)
            snapshots.append(snapshot)
            reads.append(seconds)
    state = EngineState()
    book = Book(100_000.0)
    decisions = []
    orders = 0
    for now, snapshot in zip(times, snapshots, strict=True):
        result, seconds = timed(
            run_cycle,
            snapshot,
            book,
            state,
            config,
            now,
            strategies=REGISTRY,
            is_tradable=always_tradable,
            calendar=market_calendar(),
        )
        state = result.state
        decisions.append(seconds)
        orders += len(result.orders)
    splits = [timed(fresh(snapshot).bar_symbols)[1] for snapshot in snapshots]
    per_strategy = {}
    for strategy in REGISTRY:
        params = getattr(config.strategies, strategy.name)
        spent = []
        for now, snapshot in zip(times, snapshots, strict=True):
            split = fresh(snapshot)
            split.bar_symbols()
            context = StrategyContext(snapshot=split, regime=result.regime, now=now, params=params)
            spent.append(timed(strategy.evaluate, context)[1])
        per_strategy[strategy.name] = summary(spent)
    report = {
        "benchmark": "cycle",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "assets": len(config.watchlist),
        "strategies": [s.name for s in REGISTRY],
        "cycles": cycles,
        "orders": orders,
        "decide": summary(decisions),
        "read_snapshot": summary(reads),
        "split_bars": summary(splits),
        "per_strategy": per_strategy,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "cycle.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "cycle.md").write_text(markdown(report), encoding="utf-8")
    return report


def markdown(report: dict[str, Any]) -> str:
    rows = [("decide: run_cycle", report["decide"]), ("read: snapshot from the warehouse", report["read_snapshot"])]
    rows += [("  split bars by symbol (once a snapshot)", report["split_bars"])]
    rows += [(f"  strategy {name}", figures) for name, figures in report["per_strategy"].items()]
    lines = [
        f"# Cycle benchmark ({report['date']})",
        "",
        f"{report['assets']} assets, {len(report['strategies'])} strategies, {report['cycles']} consecutive "
        f"simulated minutes; {report['machine']['cores']} cores, load {report['machine']['load_average_1m']:.2f}, "
        f"Python {report['machine']['python']}.",
        "",
        "| stage | median ms | p95 ms | max ms | CPU median ms | CPU p95 ms |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {f['median_ms']:.1f} | {f['p95_ms']:.1f} | {f['max_ms']:.1f} "
            f"| {f['cpu_median_ms']:.1f} | {f['cpu_p95_ms']:.1f} |"
            for name, f in rows
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    arguments = parser.parse_args(argv)
    report = run(arguments.cycles, arguments.out)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
