"""The portfolio as the core sees it: cash, signed holdings, last prices.

Public API
----------
``Holding(qty, avg_price)``
    A frozen snapshot of one symbol: signed quantity (negative is short) and the
    average entry price of the open quantity.

``Book(cash, holdings=None, marks=None)``
    ``apply_fill(fill) -> float``   move cash and holdings; returns the realized P&L
                                    (before fees) of the quantity the fill closed.
    ``mark(symbol, price)``         record a last price.
    ``mark_all(prices)``            record many last prices.
    ``qty(symbol) -> float``        signed quantity, 0.0 when flat.
    ``holding(symbol) -> Holding | None``, ``holdings() -> dict[str, Holding]``
    ``last_price(symbol) -> float | None``
    ``exposure(symbol) -> float``   ``|qty x mark|``.
    ``unrealized_pnl(symbol) -> float``
    ``equity``, ``positions_value``, ``gross_exposure`` (properties)
    ``cash``, ``realized_pnl``, ``fees`` (attributes, running totals)
    ``copy() -> Book``

Why a mutable class: a backtest marks 19 symbols and applies fills on every one of
hundreds of thousands of bars. Returning a new immutable book would copy its dicts on
every mark; mutating two flat dicts in place costs one store. The book is the only
mutable value in core, its changes happen only through the methods above, and
``copy()`` gives callers that need a frozen moment (a risk evaluation, a test) their
own instance.

Accounting: a buy of q at p with fee f moves cash by ``-(q x p) - f``, a sell by
``+(q x p) - f``. Adding to a position averages its entry price; reducing it realizes
``closed_qty x (p - avg) x direction`` and keeps the average; crossing zero realizes the
closed part and opens the remainder at ``p``. A symbol without a last price is marked
at its first fill price so equity is always defined. Short positions are allowed here;
refusing crypto shorts is the risk manager's job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.types import ContractError, Fill

# Quantities are floats (fractional shares and coins): a position reduced by fills that
# sum to its size may leave a residue of a few ulps, which must count as flat.
_FLAT_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Holding:
    qty: float
    avg_price: float


def _valid_price(price: float) -> bool:
    # Rejects NaN and infinities as well as non-positive prices in one comparison.
    return 0.0 < price < math.inf


class Book:
    __slots__ = ("_avg", "_marks", "_qty", "cash", "fees", "realized_pnl")

    def __init__(
        self,
        cash: float,
        holdings: Mapping[str, Holding] | None = None,
        marks: Mapping[str, float] | None = None,
    ) -> None:
        if not math.isfinite(cash):
            raise ContractError(f"book: cash {cash} is not finite")
        self.cash = cash
        self.realized_pnl = 0.0
        self.fees = 0.0
        self._qty: dict[str, float] = {}
        self._avg: dict[str, float] = {}
        self._marks: dict[str, float] = {}
        for symbol, price in (marks or {}).items():
            self.mark(symbol, price)
        for symbol, holding in (holdings or {}).items():
            if holding.qty == 0:
                continue
            if not (math.isfinite(holding.qty) and _valid_price(holding.avg_price)):
                raise ContractError(f"book: invalid holding {symbol} {holding}")
            self._qty[symbol] = holding.qty
            self._avg[symbol] = holding.avg_price
            self._marks.setdefault(symbol, holding.avg_price)

    def copy(self) -> Book:
        twin = Book(self.cash)
        twin.realized_pnl = self.realized_pnl
        twin.fees = self.fees
        twin._qty = dict(self._qty)
        twin._avg = dict(self._avg)
        twin._marks = dict(self._marks)
        return twin

    def mark(self, symbol: str, price: float) -> None:
        if not _valid_price(price):
            raise ContractError(f"book: invalid mark {price} for {symbol}")
        self._marks[symbol] = price

    def mark_all(self, prices: Mapping[str, float]) -> None:
        for symbol, price in prices.items():
            self.mark(symbol, price)

    def apply_fill(self, fill: Fill) -> float:
        symbol = fill.symbol
        signed = fill.qty * fill.side.sign
        old = self._qty.get(symbol, 0.0)
        avg = self._avg.get(symbol, 0.0)
        new = old + signed
        self.cash -= signed * fill.price + fill.fee
        self.fees += fill.fee
        self._marks.setdefault(symbol, fill.price)

        realized = 0.0
        if old == 0.0 or (old > 0.0) == (signed > 0.0):
            avg = (old * avg + signed * fill.price) / new
        else:
            closed = min(abs(signed), abs(old))
            realized = closed * (fill.price - avg) * (1.0 if old > 0.0 else -1.0)
            if (new > 0.0) != (old > 0.0):
                avg = fill.price
        self.realized_pnl += realized

        if abs(new) <= _FLAT_TOLERANCE * max(abs(old), fill.qty):
            self._qty.pop(symbol, None)
            self._avg.pop(symbol, None)
        else:
            self._qty[symbol] = new
            self._avg[symbol] = avg
        return realized

    def qty(self, symbol: str) -> float:
        return self._qty.get(symbol, 0.0)

    def holding(self, symbol: str) -> Holding | None:
        qty = self._qty.get(symbol)
        return None if qty is None else Holding(qty, self._avg[symbol])

    def holdings(self) -> dict[str, Holding]:
        return {symbol: Holding(qty, self._avg[symbol]) for symbol, qty in self._qty.items()}

    def last_price(self, symbol: str) -> float | None:
        return self._marks.get(symbol)

    def exposure(self, symbol: str) -> float:
        qty = self._qty.get(symbol)
        return 0.0 if qty is None else abs(qty * self._marks[symbol])

    def unrealized_pnl(self, symbol: str) -> float:
        qty = self._qty.get(symbol)
        return 0.0 if qty is None else qty * (self._marks[symbol] - self._avg[symbol])

    @property
    def positions_value(self) -> float:
        marks = self._marks
        return sum(qty * marks[symbol] for symbol, qty in self._qty.items())

    @property
    def gross_exposure(self) -> float:
        marks = self._marks
        return sum(abs(qty * marks[symbol]) for symbol, qty in self._qty.items())

    @property
    def equity(self) -> float:
        return self.cash + self.positions_value
