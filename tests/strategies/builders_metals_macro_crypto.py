"""Constructed snapshots for the liquidation_cascade, macro_event and precious_metals tests:
warehouse-shaped frames whose episodes are placed by hand, read point in time like the
warehouse does (only rows ingested by as_of), plus the simulator's frames for the
end-to-end checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from adapters.simulator import TABLE_SCHEMAS, MarketSimulator
from core.snapshot import MarketSnapshot
from core.types import Regime, RegimeReading, Side
from strategies.base import StrategyContext

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SIM_EPOCH = datetime(2026, 3, 2, tzinfo=UTC)


def frame(table: str, columns: dict[str, Sequence[Any]]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema=TABLE_SCHEMAS[table])


def minute_bars(
    symbol: str,
    start: datetime,
    closes: Sequence[float],
    *,
    spread: float = 0.0005,
    ingested_after: timedelta = MINUTE,
) -> pl.DataFrame:
    """One bar a minute from `start`, each opening at the previous close; high and low sit
    `spread` beyond the body. Published when the bar closes unless told otherwise."""
    close = np.asarray(closes, dtype=np.float64)
    opens = np.concatenate([close[:1], close[:-1]])
    times = [start + i * MINUTE for i in range(close.size)]
    return frame(
        "bars",
        {
            "symbol": [symbol] * close.size,
            "timeframe": ["1Min"] * close.size,
            "ts_event": times,
            "open": opens,
            "high": np.maximum(opens, close) * (1 + spread),
            "low": np.minimum(opens, close) * (1 - spread),
            "close": close,
            "volume": [100.0] * close.size,
            "trade_count": [None] * close.size,
            "vwap": [None] * close.size,
            "source": ["test"] * close.size,
            "ts_ingested": [t + ingested_after for t in times],
        },
    )


def ramp(*legs: tuple[float, float, int]) -> np.ndarray:
    """Concatenated linear legs (from, to, steps), each excluding its end point."""
    return np.concatenate([np.linspace(a, b, n, endpoint=False) for a, b, n in legs])


def wiggle(level: float, count: int, amplitude: float = 0.0005) -> np.ndarray:
    """A level with a small deterministic oscillation, so ranges and z-scores are defined."""
    return level * (1 + amplitude * np.sin(np.arange(count) / 3.0))


def funding_rates(venue_symbol: str, prints: Sequence[tuple[datetime, float]]) -> pl.DataFrame:
    return frame(
        "funding_rates",
        {
            "venue": ["binance-usdm"] * len(prints),
            "symbol": [venue_symbol] * len(prints),
            "ts_event": [t for t, _ in prints],
            "funding_rate": [rate for _, rate in prints],
            "mark_price": [None] * len(prints),
            "ts_ingested": [t + timedelta(seconds=5) for t, _ in prints],
        },
    )


def open_interest(
    venue_symbol: str, start: datetime, values: Sequence[float], step: timedelta = 5 * MINUTE
) -> pl.DataFrame:
    times = [start + i * step for i in range(len(values))]
    return frame(
        "open_interest",
        {
            "venue": ["binance-usdm"] * len(values),
            "symbol": [venue_symbol] * len(values),
            "period": ["5m"] * len(values),
            "ts_event": times,
            "open_interest": list(values),
            "open_interest_value": [None] * len(values),
            "ts_ingested": [t + timedelta(seconds=30) for t in times],
        },
    )


def margin_notices(notices: Sequence[tuple[str, datetime, float | None]]) -> pl.DataFrame:
    """(product, notice time, change_pct in percent) per row, one notice id per time."""
    return frame(
        "margin_notices",
        {
            "notice_id": [f"Chadv26-{t:%j%H%M}" for _, t, _ in notices],
            "product": [product for product, _, _ in notices],
            "rate_type": ["OUTRIGHT"] * len(notices),
            "tier": ["1"] * len(notices),
            "title": ["Performance Bond Requirements: Metals Margins"] * len(notices),
            "notice_date": [t.date() for _, t, _ in notices],
            "effective_date": [(t + timedelta(days=1)).date() for _, t, _ in notices],
            "ts_event": [t for _, t, _ in notices],
            "unit": ["USD"] * len(notices),
            "old_initial": [None] * len(notices),
            "new_initial": [None] * len(notices),
            "old_maintenance": [None] * len(notices),
            "new_maintenance": [None] * len(notices),
            "change_pct": [change for _, _, change in notices],
            "source": ["cme-advisory"] * len(notices),
            "ts_ingested": [t for _, t, _ in notices],
        },
    )


def metal_premiums(fixings: Sequence[tuple[datetime, float]]) -> pl.DataFrame:
    count = len(fixings)
    return frame(
        "metal_premiums",
        {
            "ts_event": [t for t, _ in fixings],
            "session": ["AM" if t.hour < 4 else "PM" for t, _ in fixings],
            "sge_cny_per_gram": [1000.0] * count,
            "usd_cny": [7.2] * count,
            "sge_usd_per_oz": [4000.0] * count,
            "ref_usd_per_oz": [4000.0] * count,
            "premium_usd_per_oz": [40.0 * pct for _, pct in fixings],
            "premium_pct": [pct for _, pct in fixings],
            "source": ["test"] * count,
            "ts_ingested": [t + 15 * MINUTE for t, _ in fixings],
        },
    )


def economic_events(
    events: Sequence[tuple[str, datetime]], *, importance: int = 3, all_day: bool = False
) -> pl.DataFrame:
    return frame(
        "economic_events",
        {
            "source": ["bls"] * len(events),
            "event_type": [kind for kind, _ in events],
            "ts_event": [t for _, t in events],
            "title": [f"{kind} release" for kind, _ in events],
            "importance": [importance] * len(events),
            "all_day": [all_day] * len(events),
            "ts_ingested": [t - timedelta(days=7) for _, t in events],
        },
    )


def snapshot(as_of: datetime, *frames: pl.DataFrame) -> MarketSnapshot:
    """The point-in-time read at as_of of the given frames (tables named by their columns)."""
    tables: dict[str, list[pl.DataFrame]] = {}
    for rows in frames:
        tables.setdefault(table_of(rows), []).append(rows)
    return MarketSnapshot(
        as_of=as_of,
        tables={name: pl.concat(parts).filter(pl.col("ts_ingested") <= as_of) for name, parts in tables.items()},
    )


def table_of(rows: pl.DataFrame) -> str:
    matches = [name for name, schema in TABLE_SCHEMAS.items() if list(schema) == rows.columns]
    assert len(matches) == 1, f"columns match {matches}"
    return matches[0]


def context(
    market: MarketSnapshot,
    params: Any,
    regime: Regime = Regime.HIGH_VOL,
    holdings: dict[str, float] | None = None,
    entered: frozenset[tuple[str, Side]] = frozenset(),
) -> StrategyContext:
    return StrategyContext(
        snapshot=market,
        regime=RegimeReading(regime=regime, confidence=0.8),
        now=market.as_of,
        params=params,
        holdings=holdings or {},
        entered=entered,
    )


@cache
def simulated(days: int) -> dict[str, pl.DataFrame]:
    """The simulator's facts (seed 42) for `days` days from its epoch, generated once per run."""
    simulator = MarketSimulator(seed=42, epoch=SIM_EPOCH)
    return simulator.generate(SIM_EPOCH, SIM_EPOCH + timedelta(days=days))


def simulated_snapshot(days: int, as_of: datetime) -> MarketSnapshot:
    return snapshot(as_of, *simulated(days).values())
