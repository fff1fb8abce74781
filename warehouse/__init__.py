"""The only code that talks to DuckDB."""

from warehouse.connection import Warehouse
from warehouse.errors import (
    UnknownTableError,
    WarehouseError,
    WarehouseLockedError,
    WarehouseMissingError,
    WarehouseTooNewError,
)

__all__ = [
    "UnknownTableError",
    "Warehouse",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseMissingError",
    "WarehouseTooNewError",
]
