"""What an incremental fetch needs to know of the warehouse: where each feed left off."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from warehouse.connection import Warehouse
from warehouse.read import query_frame
from warehouse.sqlfiles import read_sql


def latest_event(warehouse: Warehouse, table: str) -> datetime | None:
    with warehouse.connect() as con:
        row = con.execute(read_sql("read/latest_event"), {"table": table}).fetchone()
    return None if row is None else row[0]


def last_bars(warehouse: Warehouse, timeframe: str) -> dict[str, datetime]:
    with warehouse.connect() as con:
        rows = con.execute(read_sql("read/bars_cursor"), {"timeframe": timeframe}).fetchall()
    return {symbol: last for symbol, last in rows}


def feed_state(warehouse: Warehouse, feed: str) -> dict[str, str]:
    with warehouse.connect() as con:
        return dict(con.execute(read_sql("read/feed_state"), {"feed": feed}).fetchall())


def latest_margin_snapshot(warehouse: Warehouse) -> pl.DataFrame:
    with warehouse.connect() as con:
        return query_frame(con, "read/latest_margin_snapshot")


def series_values(warehouse: Warehouse, series: str, since: datetime) -> pl.DataFrame:
    with warehouse.connect() as con:
        return query_frame(con, "read/series_values", {"series": series, "since": since})
