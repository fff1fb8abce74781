"""Point-in-time reads: what HYDRA knew at `as_of`, never what it learned later."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from warehouse.connection import Warehouse
from warehouse.errors import UnknownTableError
from warehouse.sqlfiles import read_sql, table_names
from warehouse.tables import FEED_TABLES


def query_frame(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, object] | None = None) -> pl.DataFrame:
    """The result of sql/<name>.sql as a polars frame."""
    frame: pl.DataFrame = con.sql(read_sql(name), params=params).pl()
    return frame


def table_as_of(
    con: duckdb.DuckDBPyConnection, table: str, as_of: datetime, since: datetime | None = None
) -> pl.DataFrame:
    return query_frame(con, "read/as_of", {"table": table, "as_of": as_of, "since": since})


def snapshot(
    warehouse: Warehouse,
    as_of: datetime,
    *,
    since: datetime | None = None,
    tables: Iterable[str] = FEED_TABLES,
) -> dict[str, pl.DataFrame]:
    """Every requested table's rows with ts_ingested <= as_of (and ts_event >= since)."""
    with warehouse.connect() as con:
        known = table_names(con)
        wanted = list(tables)
        for table in wanted:
            if table not in known:
                raise UnknownTableError(table)
        return {table: table_as_of(con, table, as_of, since) for table in wanted}


@dataclass(frozen=True)
class DecisionWindows:
    """How far back a decision cycle reads each kind of table."""

    minute_bars: timedelta
    daily_bars: timedelta
    facts: timedelta

    def widened(self, span: timedelta) -> DecisionWindows:
        return DecisionWindows(self.minute_bars + span, self.daily_bars + span, self.facts + span)


class DecisionHistory:
    """Every row the decision cycles from `first` to `last` may read, loaded in one short
    connection; `at(as_of)` is exactly what a cycle at as_of reads.

    The point-in-time rule lives here alone, for one cycle and for a replay of thousands: a row
    counts once it was learned (`ts_ingested <= as_of`) and while it is inside its table's
    window. The loads are ordered totally (bars by their key, facts by time then every column),
    so a filtered history equals a fresh read row for row.
    """

    def __init__(self, tables: dict[str, pl.DataFrame], windows: DecisionWindows) -> None:
        self._tables = tables
        self._windows = windows

    @classmethod
    def load(cls, warehouse: Warehouse, first: datetime, last: datetime, windows: DecisionWindows) -> DecisionHistory:
        wide = windows.widened(last - first)
        with warehouse.connect() as con:
            tables = {
                "bars": query_frame(
                    con,
                    "read/bars_window",
                    {"as_of": last, "minute_since": last - wide.minute_bars, "day_since": last - wide.daily_bars},
                )
            }
            for table in FEED_TABLES:
                if table != "bars":
                    tables[table] = table_as_of(con, table, last, last - wide.facts)
        return cls(tables, windows)

    def at(self, as_of: datetime) -> dict[str, pl.DataFrame]:
        """Scheduled events are read forward as well as back: a calendar row ingested by as_of
        may well be dated after it."""
        known = pl.col("ts_ingested") <= as_of
        minute = (pl.col("timeframe") == "1Min") & (pl.col("ts_event") >= as_of - self._windows.minute_bars)
        daily = (pl.col("timeframe") == "1Day") & (pl.col("ts_event") >= as_of - self._windows.daily_bars)
        since = pl.col("ts_event") >= as_of - self._windows.facts
        return {
            table: frame.filter(known & (minute | daily) if table == "bars" else known & since)
            for table, frame in self._tables.items()
        }


def decision_tables(
    warehouse: Warehouse,
    as_of: datetime,
    *,
    minute_bars: timedelta,
    daily_bars: timedelta,
    facts: timedelta,
) -> dict[str, pl.DataFrame]:
    """Everything one decision cycle reads, as known at as_of."""
    windows = DecisionWindows(minute_bars, daily_bars, facts)
    return DecisionHistory.load(warehouse, as_of, as_of, windows).at(as_of)


def feed_health(warehouse: Warehouse, as_of: datetime) -> pl.DataFrame:
    with warehouse.connect() as con:
        return query_frame(con, "read/feed_health", {"as_of": as_of})


def table_row_counts(warehouse: Warehouse) -> dict[str, int]:
    with warehouse.connect() as con:
        counts = {}
        for table in sorted(table_names(con)):
            row = con.execute(read_sql("meta/table_rows"), {"table": table}).fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def last_ingestions(warehouse: Warehouse) -> pl.DataFrame:
    with warehouse.connect() as con:
        return query_frame(con, "meta/last_ingestion")


def newest_run(warehouse: Warehouse) -> str | None:
    with warehouse.connect(read_only=True) as con:
        row = con.execute(read_sql("read/newest_run")).fetchone()
    return None if row is None else str(row[0])
