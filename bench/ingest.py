"""Ingestion throughput: Alpaca 1-minute bars through parse -> validate -> upsert, and one served run.

    .venv/bin/python -m bench.ingest [--bars N] [--repeats R] [--out bench/results] [--no-served]

Pipeline (in this process): N synthetic bars of the 19-symbol watchlist (deterministic seed), as
the decoded Alpaca page the SDK hands over with raw_data=True, go through `parse_bars`,
`validate_table` and `upsert` into a fresh DuckDB warehouse; then the same rows are upserted
again (the idempotent re-load). Every stage is timed (wall and process CPU) in each of R runs;
the best run counts. One-off costs (importing Great Expectations, building its context and
suite, migrating a warehouse) are reported apart, as is decoding the JSON text, which the SDK
does before our code sees the bars. The issue's target: 1M bars end to end in under 3 s on 2 cores.

Served run (child processes, as a served Prefect run is one): the import of flows.ingest; the
bars flow over one simulated minute against a temporary Prefect server; the same run through
hydra.ingestion.ingest without Prefect. The server is stopped however the benchmark ends.

Results go to <out>/ingest.json and <out>/ingest.md. Nothing here asserts on a timing: the
machine is shared, so the load average is recorded next to every figure instead.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from adapters.alpaca_data import parse_bars
from adapters.feed import FeedBatch
from bench._report import Timed, run_machine, timed, write_files
from core.config import DEFAULT_WATCHLIST, is_crypto
from quality.validate import TableValidation, validate_table
from warehouse import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results"
DEFAULT_BARS = 1_000_000
DEFAULT_REPEATS = 3
TARGET_S = 3.0
TARGET_BARS = 1_000_000

SYMBOLS: tuple[str, ...] = DEFAULT_WATCHLIST
SEED = 20260302
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
TIMEFRAME = "1Min"
SOURCE = "alpaca-iex"
TABLE = "bars"
KEY = ("symbol", "timeframe", "ts_event")
# Rows used to pay Great Expectations' first-call costs (context, datasource, suite) apart
# from the timed runs: the suite is cached per column set, which these rows share.
WARM_UP_ROWS = 100

# One simulated minute inside the simulator's first US session (2026-03-02 is a Monday, 15:00
# UTC is 10:00 New York), so every one of the 19 symbols has a bar.
SERVED_WINDOW = (datetime(2026, 3, 2, 15, 0, tzinfo=UTC), datetime(2026, 3, 2, 15, 1, tzinfo=UTC))
SERVER_STARTUP_TIMEOUT_S = 180.0
CHILD_TIMEOUT_S = 600.0
# Modules whose presence after `import flows.ingest` says how much a served run loads up front.
WATCHED_MODULES = (
    "prefect",
    "prefect.server",
    "polars",
    "duckdb",
    "pandas",
    "pyarrow",
    "numpy",
    "alpaca",
    "feedparser",
    "great_expectations",
    "sqlalchemy",
    "fastapi",
    "scipy",
)
VERSIONED_PACKAGES = (
    "polars",
    "duckdb",
    "great-expectations",
    "pandas",
    "pyarrow",
    "numpy",
    "prefect",
    "alpaca-py",
)


IMPORT_PROBE = f"""
import json, sys, time
started = time.perf_counter()
import flows.ingest
imported = time.perf_counter()
watched = {{name: name in sys.modules for name in {WATCHED_MODULES!r}}}
count = len(sys.modules)
import great_expectations
done = time.perf_counter()
with open(sys.argv[1], "w") as out:
    json.dump({{"import_flows_ingest_s": imported - started, "import_gx_after_s": done - imported,
               "modules": watched, "module_count": count}}, out)
"""

PREFECT_CHILD = """
import time
entered = time.time()
import json, sys
from datetime import datetime
started = time.perf_counter()
from flows.ingest import ingest_bars
imported = time.perf_counter()
result = ingest_bars(start=datetime.fromisoformat(sys.argv[2]), end=datetime.fromisoformat(sys.argv[3]))
done = time.perf_counter()
with open(sys.argv[1], "w") as out:
    json.dump({"import_s": imported - started, "run_s": done - imported, "result": result,
               "gx_imported": "great_expectations" in sys.modules, "entered": entered, "left": time.time()},
              out, default=str)
"""

DIRECT_CHILD = """
import time
entered = time.time()
import json, sys
from datetime import UTC, datetime
started = time.perf_counter()
from hydra.context import load_context
from hydra.ingestion import ingest
from hydra.sources import FeedRequest
imported = time.perf_counter()
request = FeedRequest(feed="bars", now=datetime.now(UTC), start=datetime.fromisoformat(sys.argv[2]),
                      end=datetime.fromisoformat(sys.argv[3]))
outcome = ingest(load_context(), request)
done = time.perf_counter()
result = {"status": outcome.run.status, "loaded": outcome.rows_loaded, "quarantined": outcome.rows_quarantined}
with open(sys.argv[1], "w") as out:
    json.dump({"import_s": imported - started, "run_s": done - imported, "result": result,
               "prefect_imported": "prefect" in sys.modules,
               "gx_imported": "great_expectations" in sys.modules, "entered": entered, "left": time.time()},
              out, default=str)
"""


# --- synthetic data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticBars:
    page: dict[str, Any]  # {"bars": {symbol: [bar, ...]}, "next_page_token": None}
    count: int
    ingested_at: datetime  # just after the last bar: the suite rejects bars from the future


def synthetic_bars(count: int, seed: int = SEED) -> SyntheticBars:
    """`count` consecutive 1-minute bars spread over the watchlist, as one decoded Alpaca page."""
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = np.random.default_rng(seed)
    base, extra = divmod(count, len(SYMBOLS))
    sizes = [base + (1 if index < extra else 0) for index in range(len(SYMBOLS))]
    bars = {
        symbol: _symbol_bars(rng, size, crypto=is_crypto(symbol))
        for symbol, size in zip(SYMBOLS, sizes, strict=True)
        if size
    }
    return SyntheticBars({"bars": bars, "next_page_token": None}, count, EPOCH + timedelta(minutes=max(sizes)))


def _symbol_bars(rng: np.random.Generator, size: int, *, crypto: bool) -> list[dict[str, Any]]:
    first = rng.uniform(20, 500)
    walk = first * np.exp(np.cumsum(rng.normal(0, 5e-4, size)))
    previous = np.concatenate(([first], walk[:-1]))
    wicks = rng.uniform(0, 5e-4, (2, size))
    # Prices in cents as Alpaca sends them; rounding may carry open or close past the wick, so
    # high and low are widened again after it to keep every bar valid.
    opens, closes = np.round(previous, 2), np.round(walk, 2)
    highs = np.maximum(np.round(np.maximum(previous, walk) * (1 + wicks[0]), 2), np.maximum(opens, closes))
    lows = np.minimum(np.round(np.minimum(previous, walk) * (1 - wicks[1]), 2), np.minimum(opens, closes))
    vwaps = np.round(np.clip((highs + lows + closes) / 3, lows, highs), 3)
    volumes = np.round(rng.uniform(0.001, 5.0, size), 6) if crypto else rng.integers(100, 50_000, size)
    trades = rng.integers(1, 500, size)
    minutes = np.datetime64(EPOCH.replace(tzinfo=None), "m") + np.arange(size).astype("timedelta64[m]")
    stamps = np.datetime_as_string(minutes, unit="s", timezone="UTC")
    columns = (stamps, opens, highs, lows, closes, volumes, trades, vwaps)
    return [
        {"t": t, "o": o, "h": h, "l": low, "c": c, "v": v, "n": n, "vw": vw}
        for t, o, h, low, c, v, n, vw in zip(*(column.tolist() for column in columns), strict=True)
    ]


# --- stages --------------------------------------------------------------------------------------


def parse_stage(data: SyntheticBars) -> FeedBatch:
    return parse_bars(data.page["bars"], SYMBOLS, TIMEFRAME, SOURCE, data.ingested_at)


def validate_stage(frame: pl.DataFrame) -> TableValidation:
    return validate_table(TABLE, frame, list(KEY))


def upsert_stage(warehouse: Warehouse, frame: pl.DataFrame) -> int:
    return upsert(warehouse, {TABLE: frame})[TABLE]


def fresh_warehouse(directory: Path) -> Warehouse:
    warehouse = Warehouse(directory / "bench.duckdb")
    migrate(warehouse)
    return warehouse


def table_rows(warehouse: Warehouse) -> int:
    with warehouse.connect(read_only=True) as con:
        row = con.execute("SELECT count(*) FROM bars").fetchone()
    return int(row[0]) if row else 0


# --- timing ----------------------------------------------------------------------------------------


STAGES = ("parse", "validate", "upsert_first")


def measure_pipeline(data: SyntheticBars, workdir: Path, repeats: int) -> dict[str, Any]:
    """Every stage and the end-to-end path, `repeats` times; counts are checked, never timings."""
    one_off: dict[str, Any] = {}
    if "great_expectations" in sys.modules:
        one_off["gx_import_s"] = None  # imported by the caller already: the cost is not ours to see
    else:
        one_off["gx_import_s"] = timed(lambda: importlib.import_module("great_expectations"))[1].wall_s
    clean = parse_stage(synthetic_bars(WARM_UP_ROWS)).tables[TABLE]
    # A clean batch never reaches GX: one bar repeated with another close makes this one do so.
    warm_up = pl.concat([clean, clean.head(1).with_columns(pl.col("close") + 0.01)])
    one_off["gx_first_validate_s"] = timed(lambda: validate_stage(warm_up))[1].wall_s

    decode_runs, page_mb = _decode_runs(data.page, repeats)

    runs: list[dict[str, Timed]] = []
    counts: dict[str, int] = {}
    for index in range(repeats):
        gc.collect()  # the previous run's frames must not be collected inside this run's timings
        timings, counts, extras = _pipeline_run(data, workdir / f"pipeline-{index}")
        _check_counts(counts)
        runs.append(timings)
        for name, value in extras.items():
            one_off.setdefault(name, value)
    return {"one_off": one_off, "counts": counts, **_summarise(data.count, decode_runs, page_mb, runs)}


def _decode_runs(page: Mapping[str, Any], repeats: int) -> tuple[list[Timed], float]:
    """What requests' Response.json() costs the SDK on the page's text: timings and the text's MB."""
    text = json.dumps(page)
    return [timed(lambda: json.loads(text))[1] for _ in range(repeats)], len(text) / 1e6


def _pipeline_run(data: SyntheticBars, directory: Path) -> tuple[dict[str, Timed], dict[str, int], dict[str, float]]:
    """One run: parse -> validate -> first load into a fresh warehouse, then the re-load."""
    warehouse, migrated = timed(lambda: fresh_warehouse(directory))
    batch, parse_timing = timed(lambda: parse_stage(data))
    frame = batch.tables[TABLE]
    validation, validate_timing = timed(lambda: validate_stage(frame))
    passed = validation.passed
    loaded, first_timing = timed(lambda: upsert_stage(warehouse, passed))
    reloaded, reload_timing = timed(lambda: upsert_stage(warehouse, passed))
    counts = {
        "generated": data.count,
        "parsed": frame.height,
        "parse_rejected": len(batch.rejected),
        "passed_validation": passed.height,
        "validation_rejected": len(validation.rejected),
        "loaded_first": loaded,
        "loaded_reload": reloaded,
        "rows_in_table": table_rows(warehouse),
    }
    extras = {"migrate_s": migrated.wall_s, "warehouse_mb": round(warehouse.path.stat().st_size / 1e6, 1)}
    shutil.rmtree(directory)
    timings = {"parse": parse_timing, "validate": validate_timing, "upsert_first": first_timing}
    return {**timings, "upsert_reload": reload_timing}, counts, extras


def _check_counts(counts: Mapping[str, int]) -> None:
    """Synthetic bars are all valid: anything else means the figures measured the wrong work."""
    expected = counts["generated"]
    wrong = {name: value for name, value in counts.items() if value != (0 if name.endswith("_rejected") else expected)}
    if wrong:
        raise RuntimeError(f"benchmark rows went missing or were rejected: {wrong} of {expected} generated")


def _summarise(
    bars: int, decode_runs: Sequence[Timed], page_mb: float, runs: Sequence[Mapping[str, Timed]]
) -> dict[str, Any]:
    totals = [sum(run[stage].wall_s for stage in STAGES) for run in runs]
    best_run = runs[totals.index(min(totals))]
    best_total = min(totals)

    def stage(timings: Sequence[Timed], share_of: float | None) -> dict[str, Any]:
        best = min(timings, key=lambda timing: timing.wall_s)
        figures: dict[str, Any] = {
            "best_s": best.wall_s,
            "rows_per_s": bars / best.wall_s,
            "cpu_s": best.cpu_s,
            "cpu_over_wall": best.cpu_s / best.wall_s,
            "runs_s": [timing.wall_s for timing in timings],
            "load_1m": [timing.load_1m for timing in timings],
        }
        if share_of is not None:
            figures["share_of_end_to_end"] = share_of
        return figures

    stages = {"decode_json": {**stage(decode_runs, None), "page_mb": page_mb}}
    for name in (*STAGES, "upsert_reload"):
        share = best_run[name].wall_s / best_total if name in STAGES else None
        stages[name] = stage([run[name] for run in runs], share)
    return {
        "stages": stages,
        "end_to_end": {
            "best_s": best_total,
            "rows_per_s": bars / best_total,
            "cpu_s": sum(best_run[name].cpu_s for name in STAGES),
            "runs_s": totals,
            "sum_of_stage_bests_s": sum(stages[name]["best_s"] for name in STAGES),
            "target_s": TARGET_S,
            "target_bars": TARGET_BARS,
            # Fixed costs make small runs unrepresentative, so only a full-size run is judged.
            "meets_target": best_total <= TARGET_S if bars == TARGET_BARS else None,
        },
    }


# --- served run ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment(workdir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without HYDRA settings, keys or Prefect profile, plus `extra`.

    Bytecode is cached in a private folder (warmed before timing), as it is in a deployment:
    some shells here set PYTHONDONTWRITEBYTECODE, which would recompile HYDRA on every start.
    """
    dropped = ("HYDRA_", "PREFECT_", "ALPACA_", "FRED_API_KEY", "GITHUB_TOKEN", "PYTHONDONTWRITEBYTECODE")
    environment = {name: value for name, value in os.environ.items() if not name.upper().startswith(dropped)}
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
            "PREFECT_HOME": str(workdir / "prefect-client"),
            **extra,
        }
    )
    return environment


@contextlib.contextmanager
def _terminated_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so `finally` blocks (stopping the server) still run."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def prefect_server(workdir: Path) -> Iterator[tuple[str, float]]:
    """A temporary Prefect server on a free port: (API URL, startup seconds); stopped on exit."""
    port = free_port()
    home = workdir / "prefect-server"
    home.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "prefect-server.log"
    environment = child_environment(workdir, PREFECT_HOME=str(home))
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
        "--analytics-off",
    ]
    started = time.perf_counter()
    with log_path.open("wb") as log:
        # Its own session, so the server and anything it spawns stop together, by its group id.
        server = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}/api"
        _wait_healthy(url, server, log_path, started)
        yield url, time.perf_counter() - started
    finally:
        _stop(server)


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log_path: Path, started: float) -> None:
    while time.perf_counter() - started < SERVER_STARTUP_TIMEOUT_S:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}: {_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy after {SERVER_STARTUP_TIMEOUT_S:.0f} s: {_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    for sent, grace_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sent)
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else "(no output)"


def run_child(script: str, args: Sequence[str], environment: Mapping[str, str], workdir: Path) -> dict[str, Any]:
    """Run `python -c script out.json *args` in `workdir`: its wall time, load and what it wrote."""
    out = workdir / "child.json"
    out.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    started, launched = time.perf_counter(), time.time()
    finished = subprocess.run(
        [sys.executable, "-c", script, str(out), *args],
        cwd=workdir,
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    wall, returned = time.perf_counter() - started, time.time()
    if finished.returncode != 0:
        raise RuntimeError(f"child exited with {finished.returncode}: {finished.stderr[-2000:]}")
    reported: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    if "entered" in reported:
        # Interpreter start before the script's first line, and everything after its last
        # (atexit handlers such as Prefect's log and event flushing, interpreter teardown).
        reported["start_s"] = reported.pop("entered") - launched
        reported["exit_s"] = returned - reported.pop("left")
    return {"wall_s": wall, "load_1m": load, **reported}


def _best_of(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"best_wall_s": min(run["wall_s"] for run in runs), "runs": list(runs)}


def measure_served_run(workdir: Path, repeats: int) -> dict[str, Any]:
    """Process start, imports and one run of the bars flow over one simulated minute, in children."""
    template = fresh_warehouse(workdir / "template")
    start, end = (moment.isoformat() for moment in SERVED_WINDOW)
    plain = child_environment(workdir)
    # Warm the bytecode cache so no timed child compiles anything.
    run_child("import flows.ingest, great_expectations", [], plain, workdir)

    startup = _best_of([run_child("pass", [], plain, workdir) for _ in range(repeats)])
    imports = _best_of([run_child("import flows.ingest", [], plain, workdir) for _ in range(repeats)])
    probe = run_child(IMPORT_PROBE, [], plain, workdir)

    def with_warehouse(index: int, kind: str, **extra: str) -> dict[str, str]:
        # A copy of one migrated warehouse per run: each run loads its minute into an empty table.
        path = workdir / f"{kind}-{index}" / "hydra.duckdb"
        path.parent.mkdir(parents=True)
        shutil.copy(template.path, path)
        return child_environment(workdir, HYDRA_MODE="sim", HYDRA_WAREHOUSE__PATH=str(path), **extra)

    direct_runs, prefect_runs = [], []
    with _terminated_on_sigterm(), prefect_server(workdir) as (url, server_startup_s):
        # Alternated, so both kinds see the same load on the shared cores and the same idle server.
        for index in range(repeats):
            direct_runs.append(run_child(DIRECT_CHILD, [start, end], with_warehouse(index, "direct"), workdir))
            prefect_environment = with_warehouse(index, "prefect", PREFECT_API_URL=url)
            prefect_runs.append(run_child(PREFECT_CHILD, [start, end], prefect_environment, workdir))
    direct, prefect = _best_of(direct_runs), _best_of(prefect_runs)
    return {
        "window": [start, end],
        "python_startup": startup,
        "import_flows_ingest": imports,
        "import_probe": probe,
        "server_startup_s": server_startup_s,
        "prefect_run": prefect,
        "direct_run": direct,
        "prefect_overhead_s": prefect["best_wall_s"] - direct["best_wall_s"],
        "prefect_overhead_pairs_s": [
            with_prefect["wall_s"] - without["wall_s"]
            for without, with_prefect in zip(direct_runs, prefect_runs, strict=True)
        ],
    }


# --- report ----------------------------------------------------------------------------------------


def run(bars: int, repeats: int, out: Path, *, served: bool) -> dict[str, Any]:
    load_start = os.getloadavg()
    data, generation = timed(lambda: synthetic_bars(bars))
    with tempfile.TemporaryDirectory(prefix="hydra-bench-ingest-") as folder:
        workdir = Path(folder)
        pipeline = measure_pipeline(data, workdir, repeats)
        del data
        gc.collect()
        served_run = measure_served_run(workdir, repeats) if served else None
    results = {
        "benchmark": "ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": run_machine(VERSIONED_PACKAGES, load_start),
        "config": {
            "bars": bars,
            "symbols": len(SYMBOLS),
            "timeframe": TIMEFRAME,
            "seed": SEED,
            "repeats": repeats,
            "generation_s": generation.wall_s,
        },
        **pipeline,
        "served_run": served_run,
    }
    write_results(results, out)
    return results


def write_results(results: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """<out>/ingest.json and <out>/ingest.md, each replaced whole (a .tmp first) so none is half-written."""
    json_path, markdown_path = write_files(
        out, {"ingest.json": json.dumps(results, indent=2) + "\n", "ingest.md": markdown(results)}
    )
    return json_path, markdown_path


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


def markdown(results: Mapping[str, Any]) -> str:
    machine, config, stages = results["machine"], results["config"], results["stages"]
    e2e, one_off, counts = results["end_to_end"], results["one_off"], results["counts"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    labels = {
        "decode_json": "decode JSON text (SDK side, outside the target)",
        "parse": "parse: `parse_bars`",
        "validate": "validate: `validate_table` (GX warm; the bars are clean, so GX judges none)",
        "upsert_first": "upsert: first load into an empty table",
        "upsert_reload": "upsert: re-load of the same rows (outside the target)",
    }
    lines = [
        f"# Ingest benchmark ({results['date']})",
        "",
        f"{config['bars']:,} synthetic 1-minute bars, {config['symbols']} symbols (seed {config['seed']}), "
        f"best of {config['repeats']} runs. Machine: {machine['cores']} cores ({machine['cpu']}), "
        f"load average {_load(machine['load_avg_start'])} at start and {_load(machine['load_avg_end'])} at the end, "
        f"Python {machine['python']}, {packages}; peak RSS {machine['peak_rss_mb']:.0f} MB.",
        "",
        "## Pipeline",
        "",
        "| stage | best s | rows/s | share of end to end | CPU s | CPU/wall | runs s | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, label in labels.items():
        figures = stages[name]
        share = figures.get("share_of_end_to_end")
        lines.append(
            f"| {label} | {figures['best_s']:.3f} | {_rate(figures['rows_per_s'])} | "
            f"{'-' if share is None else f'{share:.0%}'} | {figures['cpu_s']:.3f} | {figures['cpu_over_wall']:.2f} | "
            f"{', '.join(f'{run:.3f}' for run in figures['runs_s'])} | "
            f"{', '.join(f'{load:.2f}' for load in figures['load_1m'])} |"
        )
    if e2e["meets_target"] is None:
        verdict = f"the {e2e['target_s']:.0f} s target applies to {e2e['target_bars']:,} bars only"
    else:
        verdict = (
            f"{'meets' if e2e['meets_target'] else 'misses'} the {e2e['target_s']:.0f} s target for "
            f"{e2e['target_bars']:,} bars ({e2e['best_s'] / e2e['target_s']:.2f}x of it)"
        )
    lines += [
        f"| **end to end: parse -> validate -> upsert** | **{e2e['best_s']:.3f}** | {_rate(e2e['rows_per_s'])} | "
        f"100% | {e2e['cpu_s']:.3f} | {e2e['cpu_s'] / e2e['best_s']:.2f} | "
        f"{', '.join(f'{run:.3f}' for run in e2e['runs_s'])} | - |",
        "",
        f"End to end {e2e['best_s']:.3f} s (sum of the stages' best runs {e2e['sum_of_stage_bests_s']:.3f} s): "
        f"{verdict}. "
        "Shares are of the best end-to-end run. CPU s is this process's CPU time over all its threads, which "
        "other processes' load disturbs less than wall time; CPU/wall above 1 means the stage used both cores.",
        "",
        "One-off costs (once per process, not in the figures above):",
        "",
        "| cost | s |",
        "|---|---:|",
        f"| import great_expectations | {_s(one_off['gx_import_s'])} |",
        f"| first `validate_table` call (GX context, datasource, suite; {WARM_UP_ROWS} rows "
        "and one repeated with another close) "
        f"| {_s(one_off['gx_first_validate_s'])} |",
        f"| migrate a fresh warehouse | {_s(one_off['migrate_s'])} |",
        "",
        f"Counts: {', '.join(f'{name} {value:,}' for name, value in counts.items())}; "
        f"warehouse file {one_off['warehouse_mb']} MB.",
        "",
    ]
    served = results.get("served_run")
    if served:
        lines += _served_markdown(served)
    return "\n".join(lines)


def _load(averages: Sequence[float]) -> str:
    return "/".join(f"{value:.2f}" for value in averages)


def _served_markdown(served: Mapping[str, Any]) -> list[str]:
    probe = served["import_probe"]
    prefect, direct = served["prefect_run"], served["direct_run"]
    loaded = [name for name, present in probe["modules"].items() if present]
    absent = [name for name, present in probe["modules"].items() if not present]

    def runs(block: Mapping[str, Any]) -> str:
        return ", ".join(f"{run['wall_s']:.2f}" for run in block["runs"])

    def split(block: Mapping[str, Any]) -> str:
        best = min(block["runs"], key=lambda run: run["wall_s"])
        parts = (best.get(name) for name in ("start_s", "import_s", "run_s", "exit_s"))
        return " | ".join(_s(part) for part in parts)

    best_prefect = min(prefect["runs"], key=lambda run: run["wall_s"])
    best_direct = min(direct["runs"], key=lambda run: run["wall_s"])
    gx_imported = any(run["gx_imported"] for block in (prefect, direct) for run in block["runs"])
    return [
        "## One served run of the every-minute bars flow",
        "",
        f"Fresh child processes, as a served Prefect run is; sim mode, window {served['window'][0]} to "
        f"{served['window'][1]}, each run into its own copy of a migrated warehouse; bytecode cached. "
        "The split is of the best run: interpreter start, imports, the run, then exit (atexit handlers, "
        "Prefect's log and event flushing, teardown).",
        "",
        "| child process | best wall s | start s | imports s | run s | exit s | runs s |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| `python -c pass` | {served['python_startup']['best_wall_s']:.3f} | - | - | - | - | "
        f"{runs(served['python_startup'])} |",
        f'| `python -c "import flows.ingest"` | {served["import_flows_ingest"]["best_wall_s"]:.3f} | - | - | - | - | '
        f"{runs(served['import_flows_ingest'])} |",
        f"| `ingest_bars` flow, Prefect server | {prefect['best_wall_s']:.3f} | {split(prefect)} | {runs(prefect)} |",
        f"| `hydra.ingestion.ingest`, no Prefect | {direct['best_wall_s']:.3f} | {split(direct)} | {runs(direct)} |",
        "",
        f"Prefect's overhead per run: {served['prefect_overhead_s']:.3f} s between the best runs "
        f"({prefect['best_wall_s'] / direct['best_wall_s']:.2f}x the run without it); per pair of alternated runs "
        f"{', '.join(f'{pair:.2f}' for pair in served['prefect_overhead_pairs_s'])} s. "
        f"Rows: {best_prefect['result'].get('loaded')} loaded through Prefect, {best_direct['result'].get('loaded')} "
        "without.",
        "Importing great_expectations, which the validate step does only for a batch with suspect rows "
        f"({'done' if gx_imported else 'not done'} in the runs above), costs "
        f"{probe['import_gx_after_s']:.3f} s on top of `import flows.ingest` ({probe['import_flows_ingest_s']:.3f} s "
        f"in the same child). After `import flows.ingest` ({probe['module_count']} modules) these are loaded: "
        f"{', '.join(loaded)}; not loaded: {', '.join(absent) or '-'}.",
        f"The temporary server took {served['server_startup_s']:.1f} s to answer /api/health (not part of a run).",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS, help="synthetic bars (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="runs per figure; the best counts")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for ingest.json and ingest.md")
    parser.add_argument(
        "--no-served", dest="served", action="store_false", help="skip the served-run part (no Prefect server)"
    )
    arguments = parser.parse_args(argv)
    if arguments.bars < 1 or arguments.repeats < 1:
        parser.error("--bars and --repeats must be at least 1")
    results = run(arguments.bars, arguments.repeats, arguments.out, served=arguments.served)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
