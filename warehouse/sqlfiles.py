"""The project's SQL lives in the `sql` package; this module is the only way to read it.

Files are loaded by package name (importlib.resources), so they work from any working
directory and from an installed wheel. Values are always bound as parameters; the one
place a statement needs an identifier (the target table of an upsert), `render` accepts
only names that exist in the live schema and quotes them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import duckdb

from warehouse.errors import UnknownTableError


@cache
def read_sql(name: str) -> str:
    """`name` is 'folder/file' without the .sql suffix, e.g. 'meta/tables'."""
    folder, _, stem = name.rpartition("/")
    package = "sql." + folder.replace("/", ".") if folder else "sql"
    return resources.files(package).joinpath(f"{stem}.sql").read_text(encoding="utf-8")


def schema_files() -> list[tuple[int, str, str]]:
    """(version, name, text) of every migration under sql/schema, in version order."""
    found = []
    for entry in resources.files("sql.schema").iterdir():
        file_name = entry.name
        if not file_name.endswith(".sql"):
            continue
        version_text, _, _ = file_name.partition("_")
        found.append((int(version_text), file_name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute(read_sql("meta/tables")).fetchall()}


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def render(con: duckdb.DuckDBPyConnection, name: str, *, table: str) -> str:
    """The statement of file `name` with {table} replaced by a quoted, existing table."""
    # Tables are only ever added (by migrations): a name seen once stays valid, and listing the
    # catalog again costs milliseconds on every upsert of a trading cycle.
    if table not in _KNOWN_TABLES:
        _KNOWN_TABLES.update(table_names(con))
        if table not in _KNOWN_TABLES:
            raise UnknownTableError(table)
    return read_sql(name).replace("{table}", quote_identifier(table))


_KNOWN_TABLES: set[str] = set()
