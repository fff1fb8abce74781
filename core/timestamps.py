"""UTC moments as whole microseconds since the Unix epoch: the unit of every time array."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
DAY_MICROS = timedelta(days=1) // MICROSECOND


def micros(moment: datetime) -> int:
    """A UTC moment in the unit of BarArrays.ts: whole microseconds since the Unix epoch."""
    return (moment - UNIX_EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    return UNIX_EPOCH + value * MICROSECOND
