"""Replay throughput of the full HYDRA cycle (five strategies, regime, risk, positions), 19 assets.

    .venv/bin/python -m bench.backtest [--hours H] [--cycle-minutes M ...] [--out bench/results]

A week of simulated history plus the replayed window is ingested into a fresh warehouse (not
timed); then `hydra.backtesting.run_backtest` replays H hours of it once per cycle length.
Reported per cycle length: cycles per second, and asset-bars per second (the stored minute
bars of the window, every one of which the simulated broker and the snapshots go through,
over the wall time); peak resident memory of the process. Results go to
<out>/backtest.json and <out>/backtest.md. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

TARGET_ASSET_BARS_PER_S = 500_000


def run(hours: float, cycle_minutes: list[int], out: Path) -> dict[str, Any]:
    # Settings are read from the working directory: the benchmark gets a fresh one of its own.
    os.chdir(tempfile.mkdtemp(prefix="hydra-bench-backtest-"))
    from hydra.backtesting import run_backtest
    from hydra.context import load_context
    from hydra.jobs import ingest_simulated
    from hydra.settings import with_overrides
    from warehouse.sqlfiles import read_sql

    context = load_context()
    history = context.settings.sim.start
    start = history + timedelta(days=7, hours=14, minutes=30)  # Monday 09:30 New York, after a week
    end = start + timedelta(hours=hours)
    ingest_simulated(context, history, end)
    with context.warehouse.connect(read_only=True) as con:
        (asset_bars,) = con.execute(read_sql("read/minute_bars_count"), {"after": start, "until": end}).fetchall()[0]
    runs = []
    for minutes in cycle_minutes:
        replaying = load_context(with_overrides(context.settings, {"sim.cycle_minutes": minutes}))
        started = time.perf_counter()
        result = run_backtest(replaying, start, end)
        wall = time.perf_counter() - started
        runs.append(
            {
                "cycle_minutes": minutes,
                "cycles": result.cycles,
                "wall_s": round(wall, 2),
                "cycles_per_s": round(result.cycles / wall, 1),
                "asset_bars_per_s": round(asset_bars / wall),
                "ratio_to_target": round(TARGET_ASSET_BARS_PER_S / (asset_bars / wall), 1),
            }
        )
    report = {
        "what": "full HYDRA cycle replay (hydra backtest), 19 assets, five strategies",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()[0]},
        "window_hours": hours,
        "asset_bars": asset_bars,
        "runs": runs,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target_asset_bars_per_s": TARGET_ASSET_BARS_PER_S,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "backtest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "backtest.md").write_text(markdown(report), encoding="utf-8")
    return report


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# {report['what']}",
        "",
        f"{machine['cpus']} CPUs, Python {machine['python']}, load {machine['load']:.1f}; "
        f"{report['window_hours']} h replayed, {report['asset_bars']} asset-bars; peak RSS {report['peak_rss_mb']} MB",
        "",
        "| cycle every | cycles | wall s | cycles/s | asset-bars/s | target / reached |",
        "|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['cycle_minutes']} min | {run['cycles']} | {run['wall_s']} | {run['cycles_per_s']} | "
            f"{run['asset_bars_per_s']} | {run['ratio_to_target']}x |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.5)
    parser.add_argument("--cycle-minutes", type=int, nargs="+", default=[15, 5, 1])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    report = run(args.hours, args.cycle_minutes, args.out.resolve())
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
