"""A replay SIGKILLed while it runs cannot record its end: the next command that lists or starts
runs finds its process gone, marks the run failed with the reason, and never takes it for the
newest run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from paper_session import START, bar_frame

from hydra.runs import SILENT_FOR, Owner, owner_gone
from warehouse import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

HYDRA = str(Path(sys.executable).with_name("hydra"))
WAREHOUSE = Path("data/hydra.duckdb")
DAYS = 4


def hydra(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HYDRA, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def backtest(minutes: int) -> subprocess.Popen[str]:
    end = START + timedelta(minutes=minutes)
    window = ("--start", f"{START:%Y-%m-%dT%H:%M}", "--end", f"{end:%Y-%m-%dT%H:%M}")
    return hydra("backtest", *window, "--cycle-minutes", "1")


def runs() -> dict[str, tuple[object, ...]]:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        rows = con.execute("SELECT run_id, status, status_reason, owner_pid, ended_at FROM runs").fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.mark.slow
def test_a_killed_backtest_is_marked_failed_and_never_chosen_as_the_newest_run() -> None:
    warehouse = Warehouse(WAREHOUSE)
    migrate(warehouse)
    upsert(warehouse, {"bars": bar_frame({"SPY": [500.0 + 0.01 * i for i in range(DAYS * 1440)]})})

    finished = backtest(30)
    assert finished.wait(timeout=300) == 0, finished.communicate()[1]
    (completed,) = runs()

    victim = backtest(DAYS * 1440 - 10)  # thousands of cycles: it is still replaying when killed
    wal = WAREHOUSE.with_name(WAREHOUSE.name + ".wal")
    deadline = time.monotonic() + 240
    while not wal.exists():  # its first write is its run's row, `running`
        assert victim.poll() is None, victim.communicate()[1]
        assert time.monotonic() < deadline, "the backtest never wrote its run"
        time.sleep(0.05)
    time.sleep(1.0)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL

    exported = hydra("trade-log")
    out, err = exported.communicate(timeout=300)
    assert exported.returncode == 0, err
    (dead,) = set(runs()) - {completed}
    assert f"trade log of {completed}:" in out
    said = f"run {dead} marked failed: its process {victim.pid} on {socket.gethostname()} ended without recording"
    assert len(err.strip().splitlines()) == 1 and err.startswith(said), err
    status, reason, pid, ended_at = runs()[dead]
    assert (status, pid) == ("failed", victim.pid) and ended_at is not None
    assert str(reason).startswith(f"owner gone: its process {victim.pid} on {socket.gethostname()} ended")
    assert runs()[completed][0] == "completed"

    reported = hydra("report")
    out, err = reported.communicate(timeout=300)
    assert reported.returncode == 0 and f"report of {completed}:" in out and err == "", err


def test_an_owner_is_gone_when_its_process_is_or_when_it_falls_silent() -> None:
    here = Owner(os.getpid(), "this-host")
    now = datetime.now(UTC)
    fresh, stale = now - timedelta(seconds=30), now - SILENT_FOR - timedelta(seconds=1)
    gone = _ended_pid()
    parent = os.getppid()  # started before this test, so before any run it could own

    assert owner_gone(here.pid, "this-host", now, stale, now, here) is None  # this process: alive
    assert owner_gone(parent, "this-host", now, stale, now, here) is None  # a live owner, however silent
    assert "ended without recording an end" in str(owner_gone(gone, "this-host", now, fresh, now, here))
    # The id of a process started after the run belongs to another: the run's own owner is gone.
    reused = owner_gone(parent, "this-host", datetime(2000, 1, 1, tzinfo=UTC), fresh, now, here)
    assert "ended without recording an end" in str(reused)
    assert owner_gone(gone, "other-host", now, fresh, now, here) is None  # elsewhere only silence tells
    assert "no heartbeat" in str(owner_gone(gone, "other-host", now, stale, now, here))
    assert "no heartbeat" in str(owner_gone(gone, "other-host", now, None, now, here))


def _ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
