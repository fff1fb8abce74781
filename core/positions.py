"""Managed positions: stops, targets, trailing stops and time exits, bar by bar.

Public API
----------
``Bar(ts, high, low, close)``            the latest bar of one symbol.
``ExitReason``                           STOP | TARGET | TRAIL | TIME | EVENT (the trades.exit_reason values).
``ManagedPosition``                      one open trade; ``trail_level``, ``effective_stop``.
``ExitIntent``                           what to send: symbol, order side, qty, reason, price reference.
``PendingExit``                          an exit decided for a position and not yet done.
``ClosedTrade``                          a round trip (or a part of one) with its P&L and realized R.

``open_position(proposal, trade_id, qty, entry_price, opened_at, entry_fees=0.0) -> ManagedPosition``
``update_position(position, bar) -> tuple[ManagedPosition, ExitIntent | None]``
``close_position(position, exit_price, exit_ts, reason, exit_fee=0.0, qty=None) -> ClosedTrade``

Conventions
-----------
* A bar gives only its range, not the path inside it, so the checks assume the worst
  plausible path: the stop (the tighter of the fixed stop and the trailing level as it
  stood BEFORE this bar) is tested first, then the target. When one bar spans both, the
  exit is the stop.
* The trailing level ratchets only in the favourable direction: from the highest high
  since entry for a long (``highest x (1 - trail_pct)``), from the lowest low for a short
  (``lowest x (1 + trail_pct)``). A bar's own extreme moves the level only after the
  stop test on that bar; if the bar then closes beyond the new level, the close came
  after the extreme, so the level was crossed and the trail exits at that level.
* Past the horizon (``bar.ts >= opened_at + horizon``) the position exits at the close.
* The price on an intent is a reference (the level crossed, or the close): the broker
  decides the fill.
* P&L is net of both legs' fees: a position carries the fees paid on its entry fills
  (``entry_fees``, summed over partial fills); closing ``qty`` of it charges the entry fees
  pro rata to ``qty`` plus the exit fill's fee, and the rest of the position keeps the rest of
  its entry fees. So the P&L of a position's closes adds up to the change in cash it caused.
* Realized R = P&L net of fees / initial risk, where the initial risk is
  ``qty x |planned entry - stop|`` from the proposal, so slippage on entry shows in R.
* Exits are produced whatever the risk state: the kill switch never blocks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from core.types import ContractError, Side, TradeProposal


class ExitReason(StrEnum):
    STOP = "stop"
    TARGET = "target"
    TRAIL = "trail"
    TIME = "time"
    EVENT = "event"  # flattened ahead of a market-moving event on a strategy's advice
    RECONCILE = "reconcile"  # the broker no longer holds it: closed to match the broker


@dataclass(frozen=True, slots=True)
class Bar:
    ts: datetime
    high: float
    low: float
    close: float

    def __post_init__(self) -> None:
        if not (0.0 < self.low <= self.close <= self.high < math.inf):
            raise ContractError(f"bar at {self.ts}: needs 0 < low <= close <= high, got {self.low=} {self.close=}")


@dataclass(frozen=True, slots=True)
class ManagedPosition:
    trade_id: str
    strategy: str
    symbol: str
    side: Side  # BUY is long, SELL is short
    qty: float
    entry: float
    stop: float
    target: float
    risk_per_unit: float
    opened_at: datetime
    horizon: timedelta
    highest: float
    lowest: float
    trail_pct: float | None = None
    # Fees paid on the entry fills of the quantity still held. The defaults of this field and the
    # next let the stored states of runs recorded before they existed decode.
    entry_fees: float = 0.0
    pending_exit: PendingExit | None = None

    def __post_init__(self) -> None:
        name = f"position {self.trade_id}"
        if not (self.qty > 0 and self.risk_per_unit > 0 and math.isfinite(self.qty * self.risk_per_unit)):
            raise ContractError(f"{name}: qty and risk_per_unit must be positive")
        if not 0.0 <= self.entry_fees < math.inf:
            raise ContractError(f"{name}: entry_fees must be finite and not negative")
        if self.trail_pct is not None and not 0 < self.trail_pct < 1:
            raise ContractError(f"{name}: trail_pct must be in (0, 1)")

    @property
    def trail_level(self) -> float | None:
        if self.trail_pct is None:
            return None
        if self.side is Side.BUY:
            return self.highest * (1.0 - self.trail_pct)
        return self.lowest * (1.0 + self.trail_pct)

    @property
    def effective_stop(self) -> float:
        trail = self.trail_level
        if trail is None:
            return self.stop
        return max(self.stop, trail) if self.side is Side.BUY else min(self.stop, trail)

    @property
    def deadline(self) -> datetime:
        return self.opened_at + self.horizon


@dataclass(frozen=True, slots=True)
class PendingExit:
    """An exit decided for a position, kept until the position is closed.

    It waits while the symbol's market is closed, then its order is sent (``order_id``); while
    that order works no other exit is decided, and if it ends with the position still held the
    exit is sent again.
    """

    reason: ExitReason
    price: float  # the reference: the level crossed, or the close
    decided_at: datetime
    order_id: str | None = None  # the client order id of the exit order working, if one is


@dataclass(frozen=True, slots=True)
class ExitIntent:
    trade_id: str
    strategy: str
    symbol: str
    side: Side  # the order's side: opposite to the position's
    qty: float
    reason: ExitReason
    price: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    position: ManagedPosition  # the part closed: its qty and the entry fees charged to it
    exit_price: float
    exit_ts: datetime
    reason: ExitReason
    exit_fee: float
    pnl: float  # net of both legs' fees
    realized_r: float
    rest: ManagedPosition | None = None  # what stays open after a partial close

    @property
    def fees(self) -> float:
        """Both legs': the entry fees charged to the part closed and the exit fill's fee."""
        return self.position.entry_fees + self.exit_fee


def open_position(
    proposal: TradeProposal,
    trade_id: str,
    qty: float,
    entry_price: float,
    opened_at: datetime,
    entry_fees: float = 0.0,
) -> ManagedPosition:
    return ManagedPosition(
        trade_id=trade_id,
        strategy=proposal.strategy,
        symbol=proposal.symbol,
        side=proposal.side,
        qty=qty,
        entry=entry_price,
        stop=proposal.stop,
        target=proposal.target,
        risk_per_unit=proposal.risk_per_unit,
        opened_at=opened_at,
        horizon=proposal.horizon,
        highest=entry_price,
        lowest=entry_price,
        trail_pct=proposal.trail_pct,
        entry_fees=entry_fees,
    )


def _exit(position: ManagedPosition, reason: ExitReason, price: float, ts: datetime) -> ExitIntent:
    return ExitIntent(
        trade_id=position.trade_id,
        strategy=position.strategy,
        symbol=position.symbol,
        side=position.side.opposite,
        qty=position.qty,
        reason=reason,
        price=price,
        ts=ts,
    )


def _stop_reason(position: ManagedPosition, level: float) -> ExitReason:
    return ExitReason.STOP if level == position.stop else ExitReason.TRAIL


def update_position(position: ManagedPosition, bar: Bar) -> tuple[ManagedPosition, ExitIntent | None]:
    level = position.effective_stop
    long = position.side is Side.BUY
    if (bar.low <= level) if long else (bar.high >= level):
        return position, _exit(position, _stop_reason(position, level), level, bar.ts)
    if (bar.high >= position.target) if long else (bar.low <= position.target):
        return position, _exit(position, ExitReason.TARGET, position.target, bar.ts)

    if bar.high > position.highest or bar.low < position.lowest:
        position = replace(position, highest=max(position.highest, bar.high), lowest=min(position.lowest, bar.low))
        trail = position.trail_level
        if trail is not None and ((bar.close <= trail) if long else (bar.close >= trail)):
            return position, _exit(position, ExitReason.TRAIL, trail, bar.ts)

    if bar.ts >= position.deadline:
        return position, _exit(position, ExitReason.TIME, bar.close, bar.ts)
    return position, None


def close_position(
    position: ManagedPosition,
    exit_price: float,
    exit_ts: datetime,
    reason: ExitReason,
    exit_fee: float = 0.0,
    qty: float | None = None,
) -> ClosedTrade:
    """Close `qty` of the position (all of it when None or within rounding of all of it).

    The part closed is charged its share of the entry fees and the whole exit fee; the rest,
    if any, is `ClosedTrade.rest`, carrying the remaining entry fees.
    """
    closed_qty = position.qty if qty is None else min(qty, position.qty)
    if position.qty - closed_qty > _QTY_TOLERANCE * position.qty:
        part_fees = position.entry_fees * closed_qty / position.qty
        part = replace(position, qty=closed_qty, entry_fees=part_fees)
        rest = replace(position, qty=position.qty - closed_qty, entry_fees=position.entry_fees - part_fees)
    else:
        part, rest = position, None
    pnl = (exit_price - part.entry) * part.qty * part.side.sign - part.entry_fees - exit_fee
    return ClosedTrade(
        position=part,
        exit_price=exit_price,
        exit_ts=exit_ts,
        reason=reason,
        exit_fee=exit_fee,
        pnl=pnl,
        realized_r=pnl / (part.qty * part.risk_per_unit),
        rest=rest,
    )


# Quantities are floats summed from fills: what is left of a position after closing all but a
# few ulps of it is nothing (core.book treats such a holding as flat too).
_QTY_TOLERANCE = 1e-9
