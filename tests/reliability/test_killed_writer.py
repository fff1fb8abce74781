"""A process killed (SIGKILL) in the middle of writing a batch leaves a warehouse that opens, and
holds the whole batch or none of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from warehouse import Warehouse
from warehouse.migrate import migrate

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    import polars as pl
    from warehouse import Warehouse
    from warehouse.load import upsert

    rows = int(sys.argv[2])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = pl.datetime_range(start, start + timedelta(minutes=rows - 1), "1m", eager=True, time_zone="UTC")
    bars = pl.DataFrame({
        "symbol": ["SPY"] * rows, "timeframe": ["1Min"] * rows, "ts_event": times,
        "open": [1.0] * rows, "high": [1.0] * rows, "low": [1.0] * rows, "close": [1.0] * rows,
        "volume": [1.0] * rows, "trade_count": [1] * rows, "vwap": [1.0] * rows, "source": ["x"] * rows,
        "ts_ingested": times,
    })
    print("writing", flush=True)
    upsert(Warehouse(sys.argv[1]), {"bars": bars})
    print("written", flush=True)
    """
)
ROWS = 1_500_000


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.3, 1.0, 2.0])
def test_a_writer_killed_mid_batch_leaves_all_or_nothing(tmp_path: Path, delay_s: float) -> None:
    path = tmp_path / "hydra.duckdb"
    migrate(Warehouse(path))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(ROWS)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(delay_s)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)

    with Warehouse(path).connect(read_only=True) as con:
        (count,) = con.execute("SELECT count(*) FROM bars").fetchall()[0]
    assert count in (0, ROWS)
