"""Wall time of the trading flow for the 19-asset watchlist, on simulated feeds in a fresh warehouse.

    .venv/bin/python -m bench.trade_flow [--cycles N] [--runs N] [--out bench/results]

Measures:
- the decide task: one `hydra.live.decide` inside one held connection, as the flow's decide task
  runs it (opening the warehouse, the broker's fills and account, the snapshot read, run_cycle,
  the write-ahead record, submissions, the simulated account saved), split into its stages;
  "decision + recording" is run_cycle plus the writes (target: under 100 ms median);
- flow run: one whole `flows.trade.trade` run in this process, Prefect included (its API
  server already up, as for a served deployment), one new minute of bars ingested before each
  (target: under 3 s);
- cold start: a fresh interpreter importing the trading flow, which a served run pays first.
Results go to <out>/trade_flow.json and <out>/trade_flow.md. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

MINUTE = timedelta(minutes=1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values_ms), 2),
        "p95_ms": round(percentile(values_ms, 0.95), 2),
        "max_ms": round(max(values_ms), 2),
    }


def run(cycles: int, runs: int, out: Path) -> dict[str, Any]:
    # Settings are read from the working directory: the benchmark gets a fresh one of its own.
    home = Path(tempfile.mkdtemp(prefix="hydra-bench-trade-"))
    os.chdir(home)
    from core.calendar import market_calendar
    from core.config import Mode
    from flows.trade import trade
    from hydra.context import load_context
    from hydra.jobs import ingest_simulated
    from hydra.live import advance_sim_broker, decide, open_job
    from hydra.simulation import trading_start

    context = load_context()
    session_open = market_calendar().equities.next_open(trading_start(context.settings.sim))
    # The warm-up's history, then the minutes of the US session the cycles decide in.
    ingest_simulated(context, context.settings.sim.start, session_open + cycles * MINUTE)

    job = open_job(context, Mode.SIM, "bench-decide")
    stages: dict[str, list[float]] = {}
    now = session_open
    for _ in range(cycles):
        now += MINUTE
        started = time.perf_counter()
        with context.warehouse.held():
            advance_sim_broker(job, now)
            record = decide(job, now, now)
        timings = dict(record.timings_ms)
        timings["decision_and_recording"] = timings["decide"] + timings["record"]
        timings["decide_task"] = (time.perf_counter() - started) * 1000
        for stage, ms in timings.items():
            stages.setdefault(stage, []).append(ms)

    flow_ms: list[float] = []
    end = now
    for index in range(runs + 1):
        ingest_simulated(context, end, end + MINUTE, feeds=["bars"])
        end += MINUTE
        started = time.perf_counter()
        outcome = trade("sim")
        if index:  # the first run starts Prefect's temporary API server: a deployment has one running
            flow_ms.append((time.perf_counter() - started) * 1000)
        assert outcome["status"] == "decided", outcome

    probe = "import flows.trade"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=Path(__file__).resolve().parents[1])
    cold_ms = (time.perf_counter() - started) * 1000

    report = {
        "what": "trading flow, 19 assets, five strategies, sim mode",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()[0]},
        "cycles": cycles,
        "stages": {stage: summary(values) for stage, values in stages.items()},
        "flow_runs": runs,
        "flow_run": summary(flow_ms),
        "cold_start_import_ms": round(cold_ms, 1),
        "targets": {"decision_and_recording_median_ms": 100, "flow_run_s": 3},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "trade_flow.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "trade_flow.md").write_text(markdown(report), encoding="utf-8")
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# {report['what']}",
        "",
        f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}, load {report['machine']['load']:.1f}",
        "",
        "| stage | median ms | p95 ms | max ms | target |",
        "|---|---|---|---|---|",
    ]
    targets = {"decision_and_recording": "< 100 ms median", "flow_run": "< 3 s"}
    for name, figures in [*report["stages"].items(), ("flow_run", report["flow_run"])]:
        median, p95, worst = figures["median_ms"], figures["p95_ms"], figures["max_ms"]
        lines.append(f"| {name} | {median} | {p95} | {worst} | {targets.get(name, '-')} |")
    lines += ["", f"Cold start (fresh interpreter importing flows.trade): {report['cold_start_import_ms']} ms", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    out = args.out.resolve()
    report = run(args.cycles, args.runs, out)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
