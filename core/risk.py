"""The risk manager: sizes proposals, applies the hard limits, keeps the kill switch.

It returns decisions and state transitions as values and never acts: the pipeline
sends the approved orders and records the decisions and events.

Public API
----------
``utc_trading_day(ts) -> date``
    The default day boundary: the UTC calendar date.

``RiskState``                 frozen; ``trading_state``, ``daily_pnl(equity)``,
                              ``drawdown(equity)``, ``count_trades(accepted)``.
``WorkingOrder``              an order sent earlier that the broker still works on: its
                              unfilled quantity, as data for ``evaluate``.
``RiskEvent``                 one row for ``kill_switch_events``.
``RiskEventKind``             HALTED | RESUMED | COOLDOWN_STARTED | COOLDOWN_ENDED.
``Transition(state, events)``
``Evaluation(state, decisions, events)``

``RiskManager(config, is_tradable, trading_day=utc_trading_day, min_notional={},
            default_min_notional=1.0, sizing=SizingParams())``
    ``min_notional`` maps a strategy to its smallest worthwhile order; the others use
    ``default_min_notional``, so a vanishing Kelly size never becomes a dust order that
    the broker refuses and that still counts as a trade of the day.
    ``initial_state(now, equity) -> RiskState``
    ``roll_day(state, now, equity) -> Transition``         new trading day: reset the
        trade count and day-start equity; a HALTED state RESUMES.
    ``expire_cooldown(state, now) -> Transition``          COOLDOWN_ENDED once over.
    ``mark_to_market(state, now, equity) -> Transition``   peak equity; HALTED when the
        day's loss reaches ``max_daily_loss x day_start_equity``.
    ``advance(state, now, equity) -> Transition``          the three above, in that order.
    ``record_trade_close(state, now, pnl) -> Transition``  losing streak; COOLDOWN_STARTED
        at ``max_consecutive_losses``.
    ``evaluate(proposals, state, book, now, *, stats, realized_vol, working=()) -> Evaluation``

Conventions
-----------
* The trading day is whatever ``trading_day(ts)`` returns; the default is the UTC date,
  so a kill switch tripped at 23:59 UTC lifts at 00:00 UTC. Pass the exchange's session
  date instead for an equities-only book. A day rolls only forward.
* Once HALTED, only ``roll_day`` clears the state: no mark-to-market recovery re-enables
  entries the same day. Exits never pass through this module, so they are never blocked.
* ``evaluate`` first ``advance``-s the state to ``now`` with the book's equity, so a
  stale state can neither block nor admit an entry; transitions are idempotent, so the
  pipeline may also call ``advance`` itself.
* Proposals are taken in rank order; each approval consumes the position, asset,
  exposure and trade-count budgets before the next proposal is considered. An approval is
  not yet a trade of the day: the caller counts an entry once the broker accepted its
  order (``RiskState.count_trades``), so an order HYDRA or the broker refused spends
  nothing of ``max_trades_per_day``.
* A crypto sell may use only the quantity the book holds, less the unfilled quantity of
  the sells still working and of those approved earlier in the same cycle; buys do not
  count, as they might not fill.
* Exposure is additive and conservative: a symbol's exposure after an approval is its
  current ``|qty x mark|`` plus the unfilled notional of its working entry orders (at the
  symbol's mark, else the order's price) plus the notional of earlier approvals in the
  same cycle plus the new notional, whatever their directions. A working exit reduces
  nothing until it fills. Notional is ``qty x proposal.entry``.
* An equity sell (a short entry: exits never come here) is sized in whole shares, as
  Alpaca sells short no fraction of a share; one that rounds to 0 is refused
  (fractional_short).
* A trade with P&L < 0 extends the losing streak; any other closed trade ends it. The
  streak restarts at zero when a cooldown starts.
* Reasons are listed in the order the checks run, each a stable ReasonCode with its detail
  apart. Approved decisions carry the reasons that CUT their size (crypto_short,
  max_position, max_asset, max_total_exposure); rejected ones carry those and every
  blocking reason (kill_switch and cooldown, detailed with until when, max_trades_per_day,
  not_tradable, kelly_non_positive, crypto_short, max_position, max_asset,
  max_total_exposure, fractional_short, below_min_notional).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from core.book import Book
from core.config import RiskConfig, RiskLimits, is_crypto
from core.sizing import SizingParams, TradeStats, size
from core.types import ContractError, Reason, ReasonCode, RiskDecision, Side, TradeProposal, TradingState

# Limits such as 0.05 are not exact in binary: a loss of exactly 5% (in decimal) can
# compare a few ulps short of the product, and must still trip the switch.
_THRESHOLD_SLACK = 1e-12

_NO_STATS = TradeStats()
# A size cut to exactly n shares by a cap may come out a few ulps short of n.
_WHOLE_SHARE_SLACK = 1e-9


def utc_trading_day(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


class RiskEventKind(StrEnum):
    HALTED = "HALTED"
    RESUMED = "RESUMED"
    COOLDOWN_STARTED = "COOLDOWN_STARTED"
    COOLDOWN_ENDED = "COOLDOWN_ENDED"


@dataclass(frozen=True, slots=True)
class RiskEvent:
    event: RiskEventKind
    ts_event: datetime
    reason: str
    equity: float | None = None
    daily_pnl: float | None = None
    until_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class RiskState:
    day: date
    day_start_equity: float
    peak_equity: float
    trades_today: int = 0
    consecutive_losses: int = 0
    halted_day: date | None = None
    cooldown_until: datetime | None = None

    @property
    def trading_state(self) -> TradingState:
        if self.halted_day is not None:
            return TradingState.HALTED
        if self.cooldown_until is not None:
            return TradingState.COOLDOWN
        return TradingState.ACTIVE

    def halts(self) -> list[Reason]:
        """What stops every entry until a moment passes: the kill switch, then a cooldown."""
        found = []
        if self.halted_day is not None:
            found.append(Reason(ReasonCode.KILL_SWITCH, f"until the trading day after {self.halted_day.isoformat()}"))
        if self.cooldown_until is not None:
            found.append(Reason(ReasonCode.COOLDOWN, f"until {self.cooldown_until.isoformat()}"))
        return found

    def daily_pnl(self, equity: float) -> float:
        return equity - self.day_start_equity

    def drawdown(self, equity: float) -> float:
        """Fraction below the running peak (0.0 at or above it)."""
        if self.peak_equity <= 0.0:
            return 0.0
        return max(0.0, 1.0 - equity / self.peak_equity)

    def count_trades(self, accepted: int) -> RiskState:
        """The state after the broker accepted `accepted` more entry orders today."""
        return replace(self, trades_today=self.trades_today + accepted)


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """An order the broker still works on; `qty` is what is left unfilled (the filled part is held)."""

    symbol: str
    side: Side
    intent: str  # 'entry' | 'exit'
    qty: float
    price: float  # the price it was decided at: its notional where the symbol has no mark


@dataclass(frozen=True, slots=True)
class Transition:
    state: RiskState
    events: tuple[RiskEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: RiskState
    decisions: tuple[RiskDecision, ...]
    events: tuple[RiskEvent, ...] = ()


@dataclass(slots=True)
class _Cycle:
    """One evaluation's inputs and what its earlier approvals have already consumed."""

    state: RiskState
    book: Book
    now: datetime
    equity: float
    gross: float
    stats: Mapping[str, TradeStats]
    realized_vol: Mapping[str, float]
    approvals: int = 0
    approved_notional: float = 0.0
    # Working entries' and this cycle's approvals' notional per symbol.
    notional_by_symbol: dict[str, float] = field(default_factory=dict)
    # Only sells (working or approved): a buy may not fill, so it cannot cover a sell.
    sold_qty_by_symbol: dict[str, float] = field(default_factory=dict)

    def hold_working(self, orders: Sequence[WorkingOrder]) -> None:
        """Working entries take exposure as if filled; working sells hold the quantity they sell."""
        for order in orders:
            symbol = order.symbol
            if order.intent == "entry":
                notional = order.qty * (self.book.last_price(symbol) or order.price)
                self.gross += notional
                self.notional_by_symbol[symbol] = self.notional_by_symbol.get(symbol, 0.0) + notional
            if order.side is Side.SELL:
                self.sold_qty_by_symbol[symbol] = self.sold_qty_by_symbol.get(symbol, 0.0) + order.qty

    def consume(self, proposal: TradeProposal, qty: float, notional: float) -> None:
        symbol = proposal.symbol
        self.approvals += 1
        self.approved_notional += notional
        self.notional_by_symbol[symbol] = self.notional_by_symbol.get(symbol, 0.0) + notional
        if proposal.side is Side.SELL:
            self.sold_qty_by_symbol[symbol] = self.sold_qty_by_symbol.get(symbol, 0.0) + qty


def _require_utc(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise ContractError(f"risk: time {now!r} must be UTC-aware")


@dataclass(frozen=True, slots=True)
class RiskManager:
    config: RiskConfig
    is_tradable: Callable[[str, datetime], bool]
    trading_day: Callable[[datetime], date] = utc_trading_day
    min_notional: Mapping[str, float] = field(default_factory=dict)
    default_min_notional: float = 1.0
    sizing: SizingParams = field(default_factory=SizingParams)
    # RiskConfig.limits builds a new model on every access; evaluate needs it per call.
    limits: RiskLimits = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limits", self.config.limits)

    def initial_state(self, now: datetime, equity: float) -> RiskState:
        _require_utc(now)
        return RiskState(day=self.trading_day(now), day_start_equity=equity, peak_equity=equity)

    def roll_day(self, state: RiskState, now: datetime, equity: float) -> Transition:
        _require_utc(now)
        day = self.trading_day(now)
        if day <= state.day:
            return Transition(state)
        rolled = replace(state, day=day, day_start_equity=equity, trades_today=0, halted_day=None)
        if state.halted_day is None:
            return Transition(rolled)
        resumed = RiskEvent(
            event=RiskEventKind.RESUMED,
            ts_event=now,
            reason=f"new trading day {day}",
            equity=equity,
            daily_pnl=0.0,
        )
        return Transition(rolled, (resumed,))

    def expire_cooldown(self, state: RiskState, now: datetime) -> Transition:
        _require_utc(now)
        until = state.cooldown_until
        if until is None or now < until:
            return Transition(state)
        ended = RiskEvent(
            event=RiskEventKind.COOLDOWN_ENDED,
            ts_event=now,
            reason=f"cooldown over at {until.isoformat()}",
            until_ts=until,
        )
        return Transition(replace(state, cooldown_until=None), (ended,))

    def mark_to_market(self, state: RiskState, now: datetime, equity: float) -> Transition:
        _require_utc(now)
        if equity > state.peak_equity:
            state = replace(state, peak_equity=equity)
        if state.halted_day is not None:
            return Transition(state)
        daily_pnl = state.daily_pnl(equity)
        threshold = self.limits.max_daily_loss * state.day_start_equity
        if -daily_pnl < threshold * (1.0 - _THRESHOLD_SLACK):
            return Transition(state)
        halted = RiskEvent(
            event=RiskEventKind.HALTED,
            ts_event=now,
            reason=(
                f"daily loss {-daily_pnl:.2f} reached max_daily_loss {self.limits.max_daily_loss:.2%} "
                f"of day-start equity {state.day_start_equity:.2f}"
            ),
            equity=equity,
            daily_pnl=daily_pnl,
        )
        return Transition(replace(state, halted_day=state.day), (halted,))

    def advance(self, state: RiskState, now: datetime, equity: float) -> Transition:
        rolled = self.roll_day(state, now, equity)
        expired = self.expire_cooldown(rolled.state, now)
        marked = self.mark_to_market(expired.state, now, equity)
        return Transition(marked.state, rolled.events + expired.events + marked.events)

    def record_trade_close(self, state: RiskState, now: datetime, pnl: float) -> Transition:
        _require_utc(now)
        if pnl >= 0.0:
            return Transition(replace(state, consecutive_losses=0))
        losses = state.consecutive_losses + 1
        if losses < self.limits.max_consecutive_losses:
            return Transition(replace(state, consecutive_losses=losses))
        until = now + timedelta(hours=self.limits.cooldown_hours)
        started = RiskEvent(
            event=RiskEventKind.COOLDOWN_STARTED,
            ts_event=now,
            reason=f"{losses} consecutive losing trades",
            until_ts=until,
        )
        return Transition(replace(state, consecutive_losses=0, cooldown_until=until), (started,))

    def evaluate(
        self,
        proposals: Iterable[TradeProposal],
        state: RiskState,
        book: Book,
        now: datetime,
        *,
        stats: Mapping[str, TradeStats],
        realized_vol: Mapping[str, float],
        working: Sequence[WorkingOrder] = (),
    ) -> Evaluation:
        equity = book.equity
        advanced = self.advance(state, now, equity)
        cycle = _Cycle(
            state=advanced.state,
            book=book,
            now=now,
            equity=equity,
            gross=book.gross_exposure,
            stats=stats,
            realized_vol=realized_vol,
        )
        cycle.hold_working(working)
        decisions = []
        for proposal in proposals:
            decision = self._decide(proposal, cycle)
            if decision.approved:
                cycle.consume(proposal, decision.qty, decision.notional)
            decisions.append(decision)
        return Evaluation(state=cycle.state, decisions=tuple(decisions), events=advanced.events)

    def _decide(self, proposal: TradeProposal, cycle: _Cycle) -> RiskDecision:
        limits = self.limits
        symbol = proposal.symbol
        equity = cycle.equity
        reasons = self._gates(proposal, cycle)
        blocked = bool(reasons)

        sizing = size(
            proposal,
            equity,
            cycle.stats.get(proposal.strategy, _NO_STATS),
            cycle.realized_vol.get(symbol),
            self.config,
            self.sizing,
        )
        if sizing.kelly_fraction <= 0.0:
            reasons.append(Reason(ReasonCode.KELLY_NON_POSITIVE))
            blocked = True

        price = proposal.entry
        qty = sizing.qty
        if is_crypto(symbol) and proposal.side is Side.SELL:
            held = cycle.book.qty(symbol) - cycle.sold_qty_by_symbol.get(symbol, 0.0)
            if held <= 0.0:
                blocked = True
                reasons.append(Reason(ReasonCode.CRYPTO_SHORT))
            elif qty > held:
                qty = held
                reasons.append(Reason(ReasonCode.CRYPTO_SHORT))

        symbol_exposure = cycle.book.exposure(symbol) + cycle.notional_by_symbol.get(symbol, 0.0)
        caps = (
            (ReasonCode.MAX_POSITION, limits.max_position * equity),
            (ReasonCode.MAX_ASSET, limits.max_asset * equity - symbol_exposure),
            (ReasonCode.MAX_TOTAL_EXPOSURE, limits.max_total_exposure * equity - cycle.gross - cycle.approved_notional),
        )
        for code, cap in caps:
            if cap <= 0.0:
                blocked = True
                reasons.append(Reason(code))
            elif qty * price > cap:
                qty = cap / price
                reasons.append(Reason(code))
        if proposal.side is Side.SELL and not is_crypto(symbol):
            qty = float(math.floor(qty + _WHOLE_SHARE_SLACK))
            if qty < 1.0 and not blocked:
                blocked = True
                reasons.append(Reason(ReasonCode.FRACTIONAL_SHORT))

        notional = qty * price
        if not blocked and notional < self.min_notional.get(proposal.strategy, self.default_min_notional):
            blocked = True
            reasons.append(Reason(ReasonCode.BELOW_MIN_NOTIONAL))
        return RiskDecision(
            proposal=proposal,
            approved=not blocked,
            qty=0.0 if blocked else qty,
            notional=0.0 if blocked else notional,
            reasons=tuple(reasons),
            kelly_fraction=sizing.kelly_fraction,
            vol_scale=sizing.vol_scale,
        )

    def _gates(self, proposal: TradeProposal, cycle: _Cycle) -> list[Reason]:
        state = cycle.state
        blocks = state.halts()
        if state.trades_today + cycle.approvals >= self.limits.max_trades_per_day:
            blocks.append(Reason(ReasonCode.MAX_TRADES_PER_DAY))
        if not self.is_tradable(proposal.symbol, cycle.now):
            blocks.append(Reason(ReasonCode.NOT_TRADABLE))
        return blocks
