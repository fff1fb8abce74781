"""Point-in-time reads: what HYDRA knew at `as_of`, never what it learned later."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
from numpy.typing import NDArray

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
    """How far back a decision cycle reads each kind of table, as of a moment.

    Bars are read over exchange sessions, not calendar days (a holiday must not shorten what
    a cycle sees), so their windows are functions of the moment: the caller's calendar says
    where N sessions back begins. Facts arrive around the clock and are read over a fixed span.
    """

    timeframe: str  # the cycle's bars, read besides the daily ones
    bars_since: Callable[[datetime], datetime]
    daily_bars_since: Callable[[datetime], datetime]
    facts: timedelta


class DecisionHistory:
    """Every row the decision cycles from `first` to `last` may read, loaded in one short
    connection; `at(as_of)` is exactly what a cycle at as_of reads.

    The point-in-time rule lives here alone (`visible`), for one cycle and for a replay of
    thousands: a row counts once it was learned (`ts_ingested <= as_of`) and while it is inside
    its table's window. The loads are ordered totally (bars by their key, facts by time then
    every column), so a filtered history equals a fresh read row for row. The rule runs on
    numpy copies of the time columns, made once: a replay asks it every minute, and one polars
    filter per table and minute cost more than the whole rest of the read.
    """

    def __init__(self, tables: dict[str, pl.DataFrame], windows: DecisionWindows) -> None:
        self.tables = tables
        self._windows = windows
        self._learned = {table: _micros(frame.get_column("ts_ingested")) for table, frame in tables.items()}
        self._happened = {table: _micros(frame.get_column("ts_event")) for table, frame in tables.items()}
        bars = tables["bars"].get_column("timeframe")
        self._cycle_bar = bars.eq(windows.timeframe).to_numpy()
        self._daily_bar = bars.eq("1Day").to_numpy()
        self._last_filtered: dict[str, tuple[NDArray[np.bool_], pl.DataFrame]] = {}

    @classmethod
    def load(cls, warehouse: Warehouse, first: datetime, last: datetime, windows: DecisionWindows) -> DecisionHistory:
        with warehouse.connect() as con:
            tables = {
                "bars": query_frame(
                    con,
                    "read/bars_window",
                    {
                        "as_of": last,
                        "timeframe": windows.timeframe,
                        "bars_since": windows.bars_since(first),
                        "day_since": windows.daily_bars_since(first),
                    },
                )
            }
            for table in FEED_TABLES:
                if table != "bars":
                    tables[table] = table_as_of(con, table, last, first - windows.facts)
        return cls(tables, windows)

    def visible(self, as_of: datetime) -> dict[str, NDArray[np.bool_]]:
        """Which rows of each loaded table a cycle at as_of reads. Scheduled events are read
        forward as well as back: a calendar row ingested by as_of may well be dated after it."""
        now = _micros_of_moment(as_of)
        rows = {}
        for table, happened in self._happened.items():
            known = self._learned[table] <= now
            if table == "bars":
                cycle = self._cycle_bar & (happened >= _micros_of_moment(self._windows.bars_since(as_of)))
                daily = self._daily_bar & (happened >= _micros_of_moment(self._windows.daily_bars_since(as_of)))
                rows[table] = known & (cycle | daily)
            else:
                rows[table] = known & (happened >= now - self._windows.facts // MICROSECOND)
        return rows

    def at(self, as_of: datetime) -> VisibleTables:
        """Each table's rows a cycle at as_of reads, each filtered on first use."""
        return VisibleTables(self, self.visible(as_of))

    def filtered(self, table: str, rows: NDArray[np.bool_]) -> pl.DataFrame:
        """The table's `rows`: the very frame of the last call when they are the same rows. Facts
        arrive far less often than cycles run, so most cycles of a replay filter nothing anew."""
        last = self._last_filtered.get(table)
        if last is not None and np.array_equal(last[0], rows):
            return last[1]
        frame = self.tables[table].filter(pl.Series(rows))
        self._last_filtered[table] = (rows, frame)
        return frame


class VisibleTables(Mapping[str, pl.DataFrame]):
    """A history's tables filtered to given rows, each when first asked for: a cycle that
    never reads a table never pays for it."""

    def __init__(self, history: DecisionHistory, rows: Mapping[str, NDArray[np.bool_]]) -> None:
        self._history = history
        self.rows = rows
        self._filtered: dict[str, pl.DataFrame] = {}

    def __getitem__(self, table: str) -> pl.DataFrame:
        found = self._filtered.get(table)
        if found is None:
            found = self._filtered[table] = self._history.filtered(table, self.rows[table])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(column: pl.Series) -> NDArray[np.int64]:
    return column.dt.epoch("us").to_numpy()


def _micros_of_moment(moment: datetime) -> int:
    return (moment - _EPOCH) // MICROSECOND


def feed_health(warehouse: Warehouse, first: datetime, last: datetime) -> pl.DataFrame:
    """Each feed's health after each run that matters to a cycle in [first, last]: sql/read/feed_health.sql."""
    with warehouse.connect() as con:
        return query_frame(con, "read/feed_health", {"first": first, "last": last})


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
