"""Record one ingestion run: its rows, its quarantined items and its summary, atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from warehouse.connection import Warehouse, in_transaction
from warehouse.load import upsert_rows


@dataclass(frozen=True)
class IngestionRun:
    run_id: str
    feed: str
    started_at: datetime
    finished_at: datetime
    status: str  # 'ok' | 'degraded' | 'failed'
    window_start: datetime | None = None
    window_end: datetime | None = None
    error: str | None = None
    validation_summary: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the sources could not give (adapters.window)


@dataclass(frozen=True)
class IngestionResult:
    run: IngestionRun
    rows_loaded: dict[str, int]
    rows_quarantined: int

    @property
    def total_loaded(self) -> int:
        return sum(self.rows_loaded.values())


def record_ingestion(
    warehouse: Warehouse,
    run: IngestionRun,
    tables: Mapping[str, pl.DataFrame],
    quarantine: pl.DataFrame | None = None,
) -> IngestionResult:
    """Upsert the run's rows, its quarantine rows and its ingestion_runs row in one transaction."""
    with warehouse.connect() as con, in_transaction(con):
        loaded, quarantined = _upsert_rows(con, tables, quarantine)
        upsert_rows(con, "ingestion_runs", _run_row(run, sum(loaded.values()), quarantined))
    return IngestionResult(run=run, rows_loaded=loaded, rows_quarantined=quarantined)


def record_chunk(
    warehouse: Warehouse, tables: Mapping[str, pl.DataFrame], quarantine: pl.DataFrame | None
) -> tuple[dict[str, int], int]:
    """One chunk of a run read in chunks: its rows and quarantine rows in one transaction.

    The run's ingestion_runs row follows its last chunk (record_run), so a run cut short leaves
    the chunks it recorded and no run row claiming it finished.
    """
    with warehouse.connect() as con, in_transaction(con):
        return _upsert_rows(con, tables, quarantine)


def record_run(warehouse: Warehouse, run: IngestionRun, loaded: dict[str, int], quarantined: int) -> IngestionResult:
    """The ingestion_runs row of a run whose rows were recorded chunk by chunk (record_chunk)."""
    with warehouse.connect() as con:
        upsert_rows(con, "ingestion_runs", _run_row(run, sum(loaded.values()), quarantined))
    return IngestionResult(run=run, rows_loaded=loaded, rows_quarantined=quarantined)


def _upsert_rows(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, pl.DataFrame], quarantine: pl.DataFrame | None
) -> tuple[dict[str, int], int]:
    loaded = {table: upsert_rows(con, table, rows) for table, rows in tables.items()}
    if quarantine is not None:
        upsert_rows(con, "quarantine", quarantine)
    return loaded, 0 if quarantine is None else quarantine.height


def _run_row(run: IngestionRun, loaded: int, quarantined: int) -> pl.DataFrame:
    timestamp = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        {
            "run_id": [run.run_id],
            "feed": [run.feed],
            "started_at": [run.started_at],
            "finished_at": [run.finished_at],
            "window_start": [run.window_start],
            "window_end": [run.window_end],
            "rows_loaded": [loaded],
            "rows_quarantined": [quarantined],
            "status": [run.status],
            "error": [run.error],
            "validation_summary": [json.dumps(dict(run.validation_summary), sort_keys=True, default=str)],
            "notes": [list(run.notes)],
        },
        schema_overrides={
            "started_at": timestamp,
            "finished_at": timestamp,
            "window_start": timestamp,
            "window_end": timestamp,
            "error": pl.Utf8,
            "notes": pl.List(pl.Utf8),
        },
    )
