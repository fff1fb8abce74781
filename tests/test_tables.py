"""adapters.tables.TABLE_SCHEMAS is the warehouse's feed schema, column for column."""

from __future__ import annotations

import pytest

from adapters.tables import TABLE_SCHEMAS, empty_frame
from warehouse import Warehouse
from warehouse.tables import FEED_TABLES


def test_every_feed_table_has_one_schema() -> None:
    assert set(TABLE_SCHEMAS) == set(FEED_TABLES)


@pytest.mark.parametrize("table", [*sorted(TABLE_SCHEMAS), "feed_state"])
def test_schema_matches_the_warehouse_column_for_column(warehouse: Warehouse, table: str) -> None:
    with warehouse.connect() as con:
        expected = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {table}").fetchall()]
        con.register("frame", empty_frame(table))
        actual = [(row[0], row[1]) for row in con.execute("DESCRIBE frame").fetchall()]
    assert actual == expected
