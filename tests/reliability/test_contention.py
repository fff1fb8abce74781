"""Ingestion and trading in two processes on one warehouse file, minute after minute: no lost
rows, no run failed on the file lock, and the decision latency under contention reported
(test-artifacts/contention.json; nothing timed is asserted)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from hydra.settings import load_settings
from hydra.sources import settings_simulator

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("HYDRA_TEST_ARTIFACTS", ROOT / "test-artifacts"))
MINUTES = int(os.environ.get("HYDRA_CONTENTION_MINUTES", "60"))  # simulated minutes ingested one by one
SETUP = textwrap.dedent(
    """
    from datetime import timedelta
    from hydra.context import load_context
    from hydra.jobs import ingest_simulated
    context = load_context()
    start = context.settings.sim.start
    ingest_simulated(context, start, start + timedelta(days=7, hours=14, minutes=30))
    """
)
INGESTOR = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from hydra.context import load_context
    from hydra.jobs import ingest_simulated
    context = load_context()
    moment = context.settings.sim.start + timedelta(days=7, hours=14, minutes=30)
    for _ in range(int(sys.argv[1])):
        ingest_simulated(context, moment, moment + timedelta(minutes=1), feeds=["bars"])
        moment += timedelta(minutes=1)
    """
)
TRADER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from core.config import Mode
    from hydra.context import load_context
    from hydra.live import advance_sim_broker, cycle_time, decide, open_job
    context = load_context()
    job = open_job(context, Mode.SIM, "contention")
    last, latencies, done = None, [], Path(sys.argv[1])
    while True:
        finished = done.exists()
        now = cycle_time(job, None)
        if now != last:
            started = time.perf_counter()
            with context.warehouse.held():
                advance_sim_broker(job, now)
                decide(job, now, now)
            latencies.append((time.perf_counter() - started) * 1000)
            last = now
        elif finished:
            break
        else:
            time.sleep(0.05)
    print(json.dumps(latencies))
    """
)


@pytest.mark.slow
def test_ingestion_and_trading_share_the_warehouse_without_losing_or_failing(tmp_path: Path) -> None:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")},
        "PYTHONPATH": str(ROOT),
        "HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES": "2",
    }

    def child(script: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", script, *args], cwd=tmp_path, env=environment, stdout=subprocess.PIPE, text=True
        )

    assert child(SETUP).wait(timeout=300) == 0
    done = tmp_path / "ingestion-done"
    trader = child(TRADER, str(done))
    ingestor = child(INGESTOR, str(MINUTES))
    assert ingestor.wait(timeout=900) == 0
    done.touch()
    output, _ = trader.communicate(timeout=300)
    assert trader.returncode == 0
    latencies = json.loads(output.strip().splitlines()[-1])

    with duckdb.connect(str(tmp_path / "data" / "hydra.duckdb"), read_only=True) as con:
        window = "ts_event >= TIMESTAMPTZ '2026-03-09 14:30:00+00' AND timeframe = '1Min'"
        (bars,) = con.execute(f"SELECT count(*) FROM bars WHERE {window}").fetchall()[0]
        statuses = con.execute("SELECT DISTINCT status FROM ingestion_runs").fetchall()
        (cycles,) = con.execute("SELECT count(*) FROM cycles WHERE run_id = 'contention'").fetchall()[0]
    # Every bar the simulator made for those minutes, no more (no duplicates) and no fewer (none lost).
    settings = load_settings()
    first = settings.sim.start + timedelta(days=7, hours=14, minutes=30)
    made = settings_simulator(settings).generate(first, first + timedelta(minutes=MINUTES))["bars"]
    assert bars == made.filter(pl.col("timeframe") == "1Min").height > 0
    assert statuses == [("ok",)]
    assert cycles == len(latencies) and cycles > 0
    report = {
        "simulated_minutes": MINUTES,
        "cycles": cycles,
        "decision_latency_ms": {
            "median": round(statistics.median(latencies), 1),
            "p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 1),
            "max": round(max(latencies), 1),
        },
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "contention.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(report)
