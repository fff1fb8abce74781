"""Schema migrations: sql/schema/NNN_*.sql applied in order, each recorded once."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from warehouse.connection import Warehouse, in_transaction
from warehouse.errors import WarehouseTooNewError
from warehouse.sqlfiles import read_sql, schema_files


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(read_sql("meta/schema_version_create"))
    row = con.execute(read_sql("meta/schema_version_current")).fetchone()
    return int(row[0]) if row else 0


def installed_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version, or None for a file HYDRA never initialised; creates nothing."""
    present = con.execute(read_sql("meta/schema_present")).fetchone()
    if present is None or not present[0]:
        return None
    version = con.execute(read_sql("meta/schema_version_current")).fetchone()
    return int(version[0]) if version else 0


def latest_known_version() -> int:
    return max(version for version, _, _ in schema_files())


def migrate(warehouse: Warehouse) -> list[str]:
    """Bring the warehouse to the code's schema; returns the migrations it applied.

    Idempotent: a warehouse already current is left untouched. A warehouse written by a
    newer HYDRA is refused rather than half-understood.
    """
    applied: list[str] = []
    with warehouse.connect(create=True) as con:
        found = current_version(con)
        known = latest_known_version()
        if found > known:
            raise WarehouseTooNewError(str(warehouse.path), found, known)
        for version, name, text in schema_files():
            if version <= found:
                continue
            with in_transaction(con):
                con.execute(text)
                con.execute(
                    read_sql("meta/schema_version_record"),
                    {"version": version, "name": name, "applied_at": datetime.now(UTC)},
                )
            applied.append(name)
    return applied
