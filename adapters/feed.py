"""The contract every feed client meets: upstream answers become rows or typed errors.

A client fetches and parses; it never writes to the warehouse. What it returns is a
FeedBatch: rows per warehouse table (columns as in sql/schema, ts_ingested set) and the
items it could not use, each with its raw payload and the reason, bound for quarantine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

# A quarantined payload is kept whole up to this size: enough to diagnose, never a flood.
PAYLOAD_LIMIT = 100_000


def payload_text(payload: Any) -> str:
    """A decoded payload as stable JSON text, for quarantine and error reports."""
    return json.dumps(payload, sort_keys=True, default=str)[:PAYLOAD_LIMIT]


def aware_utc(moment: datetime, name: str = "ingested_at") -> datetime:
    """Parsers stamp rows with times passed in; a naive one would silently mean local time."""
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


class FeedError(Exception):
    """An upstream answer that yields no rows: the part fails, the run's other parts go on."""

    def __init__(self, feed: str, message: str) -> None:
        super().__init__(f"{feed}: {message}")
        self.feed = feed


class FeedUnavailable(FeedError):
    """Down, geo-blocked (451), forbidden (403) or timing out: skip this run, keep trading."""


class RateLimited(FeedError):
    def __init__(self, feed: str, message: str, retry_after_s: float | None) -> None:
        super().__init__(feed, message)
        self.retry_after_s = retry_after_s


class MalformedResponse(FeedError):
    """The whole answer is unusable (not JSON, wrong shape); the payload goes to quarantine."""

    def __init__(self, feed: str, message: str, payload: str) -> None:
        super().__init__(feed, message)
        self.payload = payload


@dataclass(frozen=True)
class Rejected:
    payload: str
    reason: str

    @classmethod
    def of(cls, item: Any, reason: str) -> Rejected:
        text = item if isinstance(item, str) else payload_text(item)
        return cls(payload=text, reason=reason)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload.encode("utf-8")).hexdigest()


@dataclass
class FeedBatch:
    feed: str
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    # What a backfill could not get from the source, one line each (adapters.window).
    notes: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return sum(frame.height for frame in self.tables.values())

    def quarantine_frame(self, run_id: str, ingested_at: datetime) -> pl.DataFrame:
        """The rejected items as rows of the warehouse's quarantine table."""
        return pl.DataFrame(
            {
                "feed": [self.feed] * len(self.rejected),
                "payload_sha256": [item.sha256 for item in self.rejected],
                "payload": [item.payload for item in self.rejected],
                "reason": [item.reason for item in self.rejected],
                "run_id": [run_id] * len(self.rejected),
                "ts_ingested": [ingested_at] * len(self.rejected),
            },
            schema={
                "feed": pl.Utf8,
                "payload_sha256": pl.Utf8,
                "payload": pl.Utf8,
                "reason": pl.Utf8,
                "run_id": pl.Utf8,
                "ts_ingested": pl.Datetime("us", "UTC"),
            },
        )

    def extend(self, other: FeedBatch) -> None:
        for table, frame in other.tables.items():
            existing = self.tables.get(table)
            self.tables[table] = frame if existing is None else pl.concat([existing, frame], how="diagonal_relaxed")
        self.rejected.extend(other.rejected)
        self.notes.extend(other.notes)
