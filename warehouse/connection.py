"""Short-lived DuckDB connections that wait for the file lock instead of failing.

DuckDB lets one process hold a database file for writing, and while it does no other
process can open it at all. HYDRA's flows therefore open the warehouse for one short
transaction at a time and retry with jittered exponential backoff until a deadline, so an
ingestion run and the trading flow interleave instead of crashing each other.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from warehouse.errors import WarehouseLockedError, WarehouseMissingError

LOCK_MESSAGE = "Could not set lock on file"
FIRST_BACKOFF_S = 0.02
MAX_BACKOFF_S = 0.5


@dataclass(frozen=True)
class Warehouse:
    path: Path
    lock_deadline_s: float = 30.0
    # DuckDB caches the file's blocks up to its memory_limit, 80% of the machine's memory by
    # default: a long replay writing every cycle grows that cache week by week.
    memory_limit: str | None = None
    # Not an argument: a copy made by dataclasses.replace (another file) holds connections of its own.
    _held: threading.local = field(default_factory=threading.local, init=False, compare=False, repr=False)

    @contextmanager
    def connect(self, *, create: bool = False, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse, waiting for another process's lock up to the deadline.

        read_only guards ad-hoc queries against accidental writes; it does not help with
        the lock (a reader still waits for a writer in another process). Inside `held()`
        the held connection is handed out instead.
        """
        held = getattr(self._held, "con", None)
        if held is not None:
            yield held
            return
        if not create and not self.path.exists():
            raise WarehouseMissingError(str(self.path))
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open_with_retry(read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    @contextmanager
    def held(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection for every `connect()` of this thread inside the block.

        Opening and closing the file costs tens of milliseconds (a checkpoint on close): a
        trading cycle that reads and writes a handful of times holds one connection for the
        cycle instead, still releasing the file between cycles for other processes.
        """
        if getattr(self._held, "con", None) is not None:
            with self.connect() as con:
                yield con
            return
        with self.connect() as con:
            self._held.con = con
            try:
                yield con
            finally:
                self._held.con = None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection, one transaction: committed on success, rolled back on error."""
        with self.connect() as con, in_transaction(con):
            yield con

    def _open_with_retry(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        started = time.monotonic()
        backoff = FIRST_BACKOFF_S
        config: dict[str, str | bool | int | float | list[str]] = (
            {} if self.memory_limit is None else {"memory_limit": self.memory_limit}
        )
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.IOException as error:
                if LOCK_MESSAGE not in str(error):
                    raise
                waited = time.monotonic() - started
                if waited >= self.lock_deadline_s:
                    raise WarehouseLockedError(str(self.path), waited, _holder(error)) from None
                # Full jitter keeps several waiting processes from retrying in lockstep.
                time.sleep(min(random.uniform(0, backoff), self.lock_deadline_s - waited))
                backoff = min(backoff * 2, MAX_BACKOFF_S)


@contextmanager
def in_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _holder(error: duckdb.IOException) -> str:
    text = str(error)
    start = text.find("Conflicting lock")
    return text[start:].split(". See also")[0] if start >= 0 else text.splitlines()[0]
