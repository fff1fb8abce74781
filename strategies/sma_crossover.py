"""SMA crossover, long only: long from the close where the fast simple moving average crosses
above the slow one, flat from the close where it crosses back below.

A core.strategy.SignalStrategy for backtest.vector (the plain strategy the peer benchmark runs),
not one of the cycle's strategies in REGISTRY.

A cross is a change of side between two closes where both averages exist: equal averages (a
tie) are no side, so below -> tie -> above crosses at the first close above, as in vectorbt's
`crossed_above` and backtrader's `CrossOver`. Before the first cross the rule holds what it was
handed (flat at the start of a history): averages that start out with the fast one above are not
an entry. The averages are differences of cumulative sums (as in vectorbt), whose rounding residue
would give the two averages of a flat stretch of closes (common in quiet minutes) a random side:
a slow window of equal closes is a tie by definition, as when the sums are exact (backtrader).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from core.features import rolling_sum

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SmaCrossover:
    fast: int = 20
    slow: int = 50

    name: ClassVar[str] = "sma_crossover"

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"SmaCrossover needs 1 <= fast < slow, got fast={self.fast}, slow={self.slow}")

    @property
    def warmup(self) -> int:
        # slow - 1 closes for the first slow average, one more for the side before it.
        return self.slow

    def targets(self, close: FloatArray, start: int, held: bool) -> BoolArray:
        sides = crossover_sides(close, self.fast, self.slow)
        # The last side taken at or before each close (0 before the first): ties keep the side before them.
        last = np.maximum.accumulate(np.where(sides != 0, np.arange(sides.shape[0]), -1))
        side = np.where(last >= 0, sides[last], 0)
        first_with_previous = max(start, 1)
        previous = side[first_with_previous - 1 : -1]
        crosses = np.flatnonzero((side[first_with_previous:] != previous) & (previous != 0))
        out = np.full(close.shape[0] - start, held)
        if crosses.size:
            first = first_with_previous + crosses[0]
            out[first - start :] = side[first:] > 0
        return out


def crossover_sides(close: FloatArray, fast: int, slow: int) -> NDArray[np.int8]:
    """+1 where the fast average is above the slow one, -1 below, 0 for a tie or where either is missing."""
    gap = rolling_sum(close, fast) / fast - rolling_sum(close, slow) / slow
    sides = np.sign(gap)
    sides[np.isnan(sides)] = 0
    # Where the slow window's closes are all equal (the last change of close is at least slow - 1 bars back).
    positions = np.arange(close.shape[0])
    last_change = np.maximum.accumulate(np.where(np.diff(close, prepend=np.nan) != 0, positions, 0))
    sides[positions - last_change >= slow - 1] = 0
    return sides.astype(np.int8)
