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
    return _latest_by_key(warehouse, "read/bars_cursor", {"timeframe": timeframe})


def last_funding(warehouse: Warehouse, venue: str) -> dict[str, datetime]:
    return _latest_by_key(warehouse, "read/funding_cursor", {"venue": venue})


def last_open_interest(warehouse: Warehouse, venue: str, period: str) -> dict[str, datetime]:
    return _latest_by_key(warehouse, "read/open_interest_cursor", {"venue": venue, "period": period})


def last_series(warehouse: Warehouse) -> dict[str, datetime]:
    return _latest_by_key(warehouse, "read/series_cursor", {})


def last_repo_stats(warehouse: Warehouse) -> dict[str, dict[str, int | None]]:
    """Each repository's newest stored counts (stars, forks, open_issues, watchers)."""
    with warehouse.connect() as con:
        frame = query_frame(con, "read/latest_repo_stats")
    return {row.pop("repo"): row for row in frame.iter_rows(named=True)}


def _latest_by_key(warehouse: Warehouse, sql: str, params: dict[str, str]) -> dict[str, datetime]:
    """Each part's own cursor (a symbol's, a series'): a part that failed or is new resumes
    from its own newest row, never from another part's."""
    with warehouse.connect() as con:
        rows = con.execute(read_sql(sql), params).fetchall()
    return {key: last for key, last in rows}


def feed_state(warehouse: Warehouse, feed: str) -> dict[str, str]:
    with warehouse.connect() as con:
        return dict(con.execute(read_sql("read/feed_state"), {"feed": feed}).fetchall())


def latest_margin_snapshot(warehouse: Warehouse) -> pl.DataFrame:
    with warehouse.connect() as con:
        return query_frame(con, "read/latest_margin_snapshot")


def series_values(warehouse: Warehouse, series: str, since: datetime) -> pl.DataFrame:
    with warehouse.connect() as con:
        return query_frame(con, "read/series_values", {"series": series, "since": since})
