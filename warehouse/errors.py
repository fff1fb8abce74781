"""Warehouse errors: each carries a message a user can act on in one line."""

from __future__ import annotations


class WarehouseError(Exception):
    """Base of every error the warehouse raises on purpose."""


class WarehouseMissingError(WarehouseError):
    def __init__(self, path: str) -> None:
        super().__init__(f"no warehouse at {path}: run `hydra init` first")
        self.path = path


class WarehouseLockedError(WarehouseError):
    def __init__(self, path: str, waited_s: float, detail: str) -> None:
        super().__init__(f"warehouse {path} is locked by another process (waited {waited_s:.1f}s): {detail}")
        self.path = path
        self.waited_s = waited_s


class WarehouseTooNewError(WarehouseError):
    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"warehouse {path} is at schema version {found} but this HYDRA knows only up to "
            f"{known}: upgrade HYDRA, or point it at another warehouse"
        )


class UnknownTableError(WarehouseError):
    def __init__(self, table: str) -> None:
        super().__init__(f"unknown warehouse table {table!r}")
        self.table = table
