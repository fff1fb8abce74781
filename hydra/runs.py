"""Runs whose process died without a word: recognised by their owner, marked failed.

A replay is carried by one process from start to end; its `runs` row names that process (pid and
host) and the process renews `heartbeat_at` while it works. A process killed outright (SIGKILL,
the machine losing power) cannot write `failed`, so its run would read `running` for ever and a
report would take it for the newest. Every command that lists or starts runs first calls
`settle_dead_runs`: a running run whose owner is gone is marked `failed` with the reason.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psutil

from warehouse import Warehouse
from warehouse.read import newest_run, query_frame
from warehouse.sqlfiles import read_sql

# How often a replay says it is alive, and how long a silence means its owner is gone. The
# heartbeat is renewed between cycles, so the silence allows for a slow cycle on a busy machine.
HEARTBEAT_EVERY = timedelta(seconds=60)
SILENT_FOR = timedelta(minutes=10)
# A process's start time and the run's, read from two clocks' roundings.
CLOCK_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Owner:
    """The process that carries a run."""

    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname())


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    reason: str


class Heartbeat:
    """Renews a run's `heartbeat_at` at most every HEARTBEAT_EVERY; cheap to call every cycle."""

    def __init__(self, warehouse: Warehouse, run_id: str) -> None:
        self.warehouse, self.run_id = warehouse, run_id
        self._last = time.monotonic()

    def beat(self) -> None:
        if time.monotonic() - self._last < HEARTBEAT_EVERY.total_seconds():
            return
        with self.warehouse.connect() as con:
            con.execute(read_sql("record/run_heartbeat"), {"run_id": self.run_id, "at": datetime.now(UTC)})
        self._last = time.monotonic()


def owner_gone(
    pid: int, host: str, started_at: datetime, heartbeat_at: datetime | None, now: datetime, here: Owner
) -> str | None:
    """Why the owner of a run that started at `started_at` is gone, or None while it may still be working.

    On this host the process is looked for: gone, or its id now taken by a process started after
    the run (ids are reused), the run's own is dead. On another host only the heartbeat can tell."""
    last = "never" if heartbeat_at is None else heartbeat_at.isoformat(timespec="seconds")
    if host == here.host:
        if pid == here.pid or _started_by(pid, started_at):
            return None
        return f"its process {pid} on {host} ended without recording an end (killed?); last heartbeat {last}"
    if heartbeat_at is None or now - heartbeat_at > SILENT_FOR:
        return f"its process {pid} on {host} has given no heartbeat for over {SILENT_FOR} (last {last})"
    return None


def settle_dead_runs(warehouse: Warehouse, now: datetime | None = None) -> list[DeadRun]:
    """Mark `failed`, with the reason, every running run whose owner is gone; returns them."""
    moment = now or datetime.now(UTC)
    here = Owner.this_process()
    with warehouse.connect() as con:
        running = query_frame(con, "read/owned_running_runs")
        dead = [
            DeadRun(run_id, reason)
            for run_id, pid, host, started_at, heartbeat_at in running.iter_rows()
            if (reason := owner_gone(pid, host, started_at, heartbeat_at, moment, here)) is not None
        ]
        for run in dead:
            con.execute(
                read_sql("record/run_dead"),
                {"run_id": run.run_id, "reason": f"owner gone: {run.reason}", "found_at": moment},
            )
    return dead


def newest_settled_run(warehouse: Warehouse) -> tuple[str | None, list[DeadRun]]:
    """The run a report or an export means by default, once the dead runs are marked failed
    (they are chosen only when nothing else is left), and the runs found dead."""
    dead = settle_dead_runs(warehouse)
    return newest_run(warehouse), dead


def _started_by(pid: int, moment: datetime) -> bool:
    """Whether a process of this id runs, started by `moment` (so not a later one given the same id)."""
    try:
        created = float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists, its start cannot be read
        return True
    return created <= moment.timestamp() + CLOCK_TOLERANCE_S
