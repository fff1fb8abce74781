"""`hydra backtest --data FILE` on big files: seconds and peak memory of the whole command.

    .venv/bin/python -m bench.bar_file [--rows N] [--label L] [--out bench/results]

Each case runs the real command in a child process (its own working directory, a fresh
warehouse) and records its wall time, its peak resident memory (the child's own rusage), its
exit code, the last line it printed and the size of data/backtests afterwards:

- `all-nan`: N rows of one symbol whose prices and volume are all NaN (Parquet): the file has
  no valid row, so the run ends with its one-line error;
- `outside`: N valid one-minute BTC/USD bars (Parquet), a window a year after the file's last
  bar: a one-line error naming the file's range;
- `load`: the same file, an hour in its middle: the file is loaded, validated and replayed;
- `again`: the same command once more (a scratch warehouse of the same content can be reused).

Results go to <out>/bar_file-<label>.json and .md. Nothing asserts on a timing: the machine is
shared, so the load average is recorded next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench._report import machine_info, write_files

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results"
DEFAULT_ROWS = 1_000_000
HYDRA = Path(sys.executable).with_name("hydra")
FIRST_BAR = datetime(2024, 1, 1, tzinfo=UTC)
SEED = 20240101


def all_nan_file(path: Path, rows: int) -> None:
    nan = np.full(rows, np.nan)
    pl.DataFrame(
        {
            "symbol": ["SPY"] * rows,
            "ts_event": pl.datetime_range(
                FIRST_BAR, FIRST_BAR + timedelta(minutes=rows - 1), "1m", time_zone="UTC", eager=True
            ),
            **{column: nan for column in ("open", "high", "low", "close", "volume")},
        }
    ).write_parquet(path)


def minute_file(path: Path, rows: int) -> None:
    rng = np.random.default_rng(SEED)
    close = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.0003, rows)) * close
    pl.DataFrame(
        {
            "symbol": ["BTC/USD"] * rows,
            "ts_event": pl.datetime_range(
                FIRST_BAR, FIRST_BAR + timedelta(minutes=rows - 1), "1m", time_zone="UTC", eager=True
            ),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(0.1, 5.0, rows),
        }
    ).write_parquet(path)


def run_case(name: str, workdir: Path, arguments: list[str]) -> dict[str, Any]:
    """One child `hydra backtest ...`: wall seconds, its own peak RSS, how it ended."""
    load = os.getloadavg()[0]
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    started = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        child = subprocess.Popen([str(HYDRA), "backtest", *arguments], cwd=workdir, stdout=stdout, stderr=stderr)
        # wait4, not wait: the child's own rusage, whatever other children this process had.
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    said = [line for line in err.read_text().splitlines() + out.read_text().splitlines() if line.strip()]
    scratch = [path for path in (workdir / "data" / "backtests").glob("*") if path.is_file()]
    return {
        "case": name,
        "seconds": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "exit_code": os.waitstatus_to_exitcode(status),
        "first_line": said[0][:300] if said else "",
        "reused": "reused" in out.read_text(),
        "scratch_mb": round(sum(path.stat().st_size for path in scratch) / 1e6, 1),
        "load_1m": load,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-bar-file-") as temporary:
        work = Path(temporary)
        nan_file, bars_file = work / "all_nan.parquet", work / "minutes.parquet"
        all_nan_file(nan_file, args.rows)
        minute_file(bars_file, args.rows)
        last = FIRST_BAR + timedelta(minutes=args.rows - 1)
        inside = (FIRST_BAR + timedelta(minutes=args.rows // 2)).replace(minute=0)  # an hour in the middle
        cases = {
            "all-nan": (nan_file, FIRST_BAR, FIRST_BAR + timedelta(days=1)),
            "outside": (bars_file, last + timedelta(days=365), last + timedelta(days=366)),
            "load": (bars_file, inside, inside + timedelta(hours=1)),
            "again": (bars_file, inside, inside + timedelta(hours=1)),
        }
        for name, (path, start, end) in cases.items():
            window = ["--start", f"{start:%Y-%m-%dT%H:%M}", "--end", f"{end:%Y-%m-%dT%H:%M}"]
            result = run_case(name, work, ["--data", str(path), *window, "--cycle-minutes", "60"])
            print(json.dumps(result), flush=True)
            results.append(result)
        sizes = {
            "all_nan_mb": round(nan_file.stat().st_size / 1e6, 1),
            "minutes_mb": round(bars_file.stat().st_size / 1e6, 1),
        }
    report = {
        "label": args.label,
        "rows": args.rows,
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": sizes,
        "machine": machine_info(("polars", "pyarrow", "duckdb", "great-expectations")),
        "cases": results,
    }
    header = (
        "| case | seconds | peak RSS MB | exit | scratch MB after | load (1 min) | first line |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
    )
    rows = "".join(
        f"| {r['case']} | {r['seconds']} | {r['peak_rss_mb']} | {r['exit_code']} | {r['scratch_mb']} | "
        f"{r['load_1m']:.2f} | {r['first_line'].replace('|', '/')} |\n"
        for r in results
    )
    text = (
        f"# `hydra backtest --data` on {args.rows:,} rows ({args.label}, {report['ran_at']})\n\n"
        f"Files: all-NaN {sizes['all_nan_mb']} MB, one-minute bars {sizes['minutes_mb']} MB (Parquet). "
        f"Each case is one child process; peak RSS is the child's own.\n\n{header}{rows}"
    )
    write_files(
        args.out,
        {f"bar_file-{args.label}.json": json.dumps(report, indent=2) + "\n", f"bar_file-{args.label}.md": text},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
