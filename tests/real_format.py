"""Bars in the real format on the real NYSE calendar, for what no registry package ships.

Real one-minute US equity bars are not on the package registry (tests/data/real/README.md). These
are shaped like Alpaca's: only the minutes of NYSE sessions (holidays skipped, half days ending at
13:00 New York), prices on a cent grid, so a quiet minute does not move at all, as on a real tape.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from core.calendar import nyse_sessions
from core.timestamps import from_micros

MINUTE_MICROS = 60_000_000


def session_minutes(first: date, last: date) -> np.ndarray:
    """The start (UTC micros) of every minute of every NYSE session from `first` to `last`."""
    sessions = nyse_sessions(first, last)
    return np.concatenate(
        [np.arange(open_, close, MINUTE_MICROS) for open_, close in zip(sessions.opens, sessions.closes, strict=True)]
    )


def minute_bars(symbol: str, first: date, last: date, *, start_price: float, seed: int) -> pl.DataFrame:
    """One symbol's minute bars over the sessions of [first, last]: a random walk of 4 bp a minute
    on a cent grid, with a little volume every minute."""
    starts = session_minutes(first, last)
    rng = np.random.default_rng(seed)
    path = np.round(start_price * np.exp(np.cumsum(rng.normal(0.0, 0.0004, starts.size + 1))), 2)
    opens, closes = path[:-1], path[1:]
    spread = np.round(np.abs(rng.normal(0.0, 0.0002, starts.size)) * start_price, 2)
    return pl.DataFrame(
        {
            "symbol": symbol,
            "timestamp": [from_micros(int(ts)) for ts in starts],
            "open": opens,
            "high": np.maximum(opens, closes) + spread,
            "low": np.minimum(opens, closes) - spread,
            "close": closes,
            "volume": rng.integers(100, 5_000, starts.size).astype(float),
            "timeframe": "1Min",
        }
    )


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    frame.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    return path


def crypto_bars(
    symbol: str, start: datetime, days: int, *, minutes: int, start_price: float, seed: int
) -> pl.DataFrame:
    """A crypto pair's bars of `minutes` around the clock, like Alpaca's crypto bars, without a
    timeframe column (the file says nothing of it: the spacing must)."""
    count = days * 24 * 60 // minutes
    rng = np.random.default_rng(seed)
    path = start_price * np.exp(np.cumsum(rng.normal(0.0, 0.004, count + 1)))
    opens, closes = path[:-1], path[1:]
    return pl.DataFrame(
        {
            "symbol": symbol,
            "timestamp": [start + timedelta(minutes=minutes * i) for i in range(count)],
            "open": opens,
            "high": np.maximum(opens, closes) * 1.001,
            "low": np.minimum(opens, closes) * 0.999,
            "close": closes,
            "volume": rng.integers(10, 500, count).astype(float),
        }
    )
