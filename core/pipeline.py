"""One decision cycle, the same in sim, paper and backtest: `run_cycle`, then `apply_fills`.

    run_cycle(snapshot, book, state, config, now, strategies=..., is_tradable=...) -> CycleResult

1. OBSERVE    mark the book to the snapshot's last prices; roll the risk day, expire
              cooldowns, trip the kill switch on the day's loss.
2. REGIME     the rules read the regime from the reference's session closes every cycle;
              the first `observation_cycles` cycles record everything but order nothing.
3. SIGNALS    every strategy evaluates (or abstains with its reason); signals are
              aggregated per symbol by reliability x age decay x cross-asset modifiers.
4. PROPOSE    proposals of strategies serving the regime (or overriding it on events);
              each one's confidence is scaled by how much the aggregate view agrees.
5. RANK       by EV = confidence x reward:risk x strategy weight.
6. FILTER     the risk manager sizes (half-Kelly x vol scaling) and applies the limits.
7. ORDERS     approved entries, and exits from the position manager (never blocked).
8. READINESS  what kept the cycle, or a strategy in it, from trading, and when it will be
              ready (core.readiness).

The broker's answers to the orders come back through `settle_submissions`: an entry the
broker accepted counts as a trade of the day, a refused order ends, and a view refused for a
reason that lasts (not shortable, no fractional shorts, not tradable, shorting disabled) is
not proposed again until it ends. Fills come back through `apply_fills`, which opens
and closes managed positions, feeds closed trades to the risk manager (consecutive
losses -> cooldown) and to adaptation (weights, reliabilities). Everything the next cycle
needs is in the returned EngineState, so a restarted process resumes exactly.

The strategies and the world's market hours are passed in: core imports neither.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

import numpy as np
import polars as pl

from core.adaptation import (
    StrategyPerformance,
    WeightUpdate,
    initial_performance,
    record_trade,
    reliabilities,
    weights,
)
from core.book import Book
from core.calendar import NOT_A_SESSION, MarketCalendar, Sessions, Timeframe
from core.config import EngineConfig, RegimeConfig, is_crypto
from core.features import (
    SESSION_WINDOWS,
    FloatArray,
    SessionSeries,
    SessionValues,
    aligned,
    compute_features,
    merge_closes,
    session_closes,
)
from core.positions import (
    Bar,
    ClosedTrade,
    ExitIntent,
    ExitReason,
    ManagedPosition,
    PendingExit,
    close_position,
    open_position,
    update_position,
)
from core.ranking import RankedProposal, rank_proposals
from core.readiness import Readiness, cycle_readiness
from core.regime import UNKNOWN_VERSION, DetectorState, RegimeDetector, estimate_regime
from core.risk import RiskEvent, RiskManager, RiskState, WorkingOrder
from core.signals import AggregatedSignal, Modifier, aggregate_signals
from core.snapshot import BarArrays, MarketSnapshot, from_micros, micros_of
from core.strategy import (
    DISABLED_IN_CONFIGURATION,
    ExposureAdvice,
    Strategy,
    StrategyContext,
    StrategyOutput,
    missing_inputs,
)
from core.types import (
    Fill,
    Order,
    Reason,
    ReasonCode,
    RegimeReading,
    RiskDecision,
    Side,
    Signal,
    TradeProposal,
    TradingState,
)

# Daily volatility is measured over an equity session's worth of bar returns (390 minutes), at
# least 20 of them: a session of minute bars, 20 half-hours, 20 sessions of daily bars.
VOLATILITY_MINUTES = 390
MIN_VOLATILITY_RETURNS = 20
MINUTES_PER_DAY = {True: 1_440.0, False: 390.0}  # crypto trades around the clock
MINUTE = timedelta(minutes=1)
# How much the aggregate view of a symbol can scale a proposal's confidence, up or down.
AGREEMENT_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class RefusedView:
    """A strategy's view on a symbol and side whose entry the broker refused for a reason that will
    not change within the view (the refusal's `code`): the strategy counts it as entered, so it
    proposes it no more, until `until`, the end of the refused proposal's horizon."""

    strategy: str
    symbol: str
    side: Side
    code: str
    until: datetime


@dataclass(frozen=True, slots=True)
class EngineState:
    """What one cycle hands the next; stored in the warehouse so a restart resumes exactly."""

    detector: DetectorState = field(default_factory=DetectorState)
    risk: RiskState | None = None
    positions: tuple[ManagedPosition, ...] = ()
    performance: Mapping[str, StrategyPerformance] = field(default_factory=dict)
    pending_entries: Mapping[str, TradeProposal] = field(default_factory=dict)  # client order id -> proposal
    last_cycle_at: datetime | None = None  # exits replay every bar closed since then
    # The shortest time between two of the run's cycles: when the next one is expected (a pause
    # of the run lengthens one interval, never this).
    cycle_interval: timedelta | None = None
    # Differences with the broker left standing, symbol -> (managed qty, broker qty): each is
    # recorded when it appears or changes, not again every cycle it persists.
    standing_differences: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # Per symbol, the newest of the broker's outside fills a reconciliation has weighed: a later one
    # looks only at fills after it, so no fill closes managed quantity twice.
    outside_fills_seen: Mapping[str, datetime] = field(default_factory=dict)
    refused_views: tuple[RefusedView, ...] = ()

    @property
    def cycle_no(self) -> int:
        return self.detector.cycle

    def performance_of(self, strategy: str) -> StrategyPerformance:
        return self.performance.get(strategy) or initial_performance(strategy)


@dataclass(frozen=True, slots=True)
class CycleResult:
    now: datetime
    cycle_no: int
    state: EngineState
    regime: RegimeReading
    observation_only: bool
    trading_state: TradingState
    signals: tuple[Signal, ...]
    aggregated: tuple[AggregatedSignal, ...]
    reliability: Mapping[str, float]
    abstentions: Mapping[str, Reason]
    ranked: tuple[RankedProposal, ...]
    decisions: tuple[RiskDecision, ...]
    orders: tuple[Order, ...]
    risk_events: tuple[RiskEvent, ...]
    equity: float
    readiness: tuple[Readiness, ...]  # what kept the cycle, or a strategy in it, from trading

    @property
    def entries(self) -> tuple[Order, ...]:
        return tuple(order for order in self.orders if order.intent == "entry")


@dataclass(frozen=True, slots=True)
class FillOutcome:
    state: EngineState
    opened: tuple[ManagedPosition, ...]
    closed: tuple[ClosedTrade, ...]
    weight_updates: tuple[WeightUpdate, ...]
    risk_events: tuple[RiskEvent, ...]


def client_order_id(now: datetime, strategy: str, symbol: str, leg: str) -> str:
    """Deterministic, so a retried submit of the same decision can never double-order.

    Readable for a human scanning the broker's order list, and well under Alpaca's 128
    characters; the hash keeps two legs of one cycle apart whatever their names.
    """
    digest = hashlib.sha256(f"{now.isoformat()}|{strategy}|{symbol}|{leg}".encode()).hexdigest()[:10]
    return f"hy-{now:%Y%m%d%H%M}-{strategy[:14]}-{symbol.replace('/', '')}-{digest}"


def run_cycle(
    snapshot: MarketSnapshot,
    book: Book,
    state: EngineState,
    config: EngineConfig,
    now: datetime,
    *,
    strategies: Sequence[Strategy],
    is_tradable: Callable[[str, datetime], bool],
    calendar: MarketCalendar,
    working: Sequence[WorkingOrder] = (),
) -> CycleResult:
    """`working` are the orders of earlier cycles the broker still works on: entries take their
    exposure until they end."""
    market = _Market.of(snapshot, now)
    book = book.copy()
    book.mark_all(market.last_prices)
    equity = book.equity
    manager = RiskManager(
        config.risk,
        is_tradable,
        min_notional={"liquidation_cascade": config.strategies.liquidation_cascade.min_notional},
    )
    advanced = manager.advance(state.risk or manager.initial_state(now, equity), now, equity)

    series, gauges = regime_series(snapshot, calendar.equities, now, config.regime)
    estimate = estimate_regime(compute_features(series, SESSION_WINDOWS), config.regime, gauges)
    detector_state, reading = RegimeDetector(config.regime).step(
        state.detector, estimate, _too_few_sessions(config.regime.reference, len(series))
    )
    observation_only = detector_state.cycle <= config.regime.observation_cycles
    regime_known = reading.model_version != UNKNOWN_VERSION

    holdings = {symbol: holding.qty for symbol, holding in book.holdings().items()}
    refused_views = tuple(view for view in state.refused_views if view.until > now)
    entered = _entered_views(state.positions, state.pending_entries.values(), refused_views)
    outputs, abstentions = _evaluate(strategies, snapshot, reading, now, config, holdings, entered)
    signals = tuple(signal for output in outputs.values() for signal in output.signals)
    modifiers: tuple[Modifier, ...] = tuple(m for output in outputs.values() for m in output.modifiers)
    reliability = reliabilities(state.performance_of(s.name) for s in strategies)
    aggregated = aggregate_signals(signals, now, reliability, modifiers)

    advice = tuple(a for output in outputs.values() for a in output.exposure_advice if a.until > now)
    proposals = _eligible_proposals(strategies, outputs, reading if regime_known else None, not observation_only)
    proposals, blocked = _apply_advice(proposals, advice)
    adjusted = tuple(_with_agreement(p, aggregated) for p in proposals)
    ranked = rank_proposals(adjusted, weights(state.performance_of(s.name) for s in strategies))
    evaluation = manager.evaluate(
        [r.proposal for r in ranked],
        advanced.state,
        book,
        now,
        stats={s.name: state.performance_of(s.name).stats for s in strategies},
        realized_vol=market.daily_volatility,
        working=working,
    )
    decisions = (*evaluation.decisions, *blocked)

    approved = [d for d in evaluation.decisions if d.approved]
    entries = tuple(_entry_order(d, now) for d in approved)
    cycle_interval = _cycle_interval(state, now)
    positions, exits = _manage_positions(
        state.positions, snapshot, market, state.last_cycle_at, advice, now, cycle_interval, is_tradable
    )
    new_state = EngineState(
        detector=detector_state,
        risk=evaluation.state,
        positions=positions,
        performance={s.name: state.performance_of(s.name) for s in strategies},
        pending_entries={
            **state.pending_entries,
            **{order.client_order_id: d.proposal for order, d in zip(entries, approved, strict=True)},
        },
        last_cycle_at=now,
        cycle_interval=cycle_interval,
        standing_differences=state.standing_differences,
        outside_fills_seen=state.outside_fills_seen,
        refused_views=refused_views,
    )
    return CycleResult(
        now=now,
        cycle_no=detector_state.cycle,
        state=new_state,
        regime=reading,
        observation_only=observation_only,
        trading_state=evaluation.state.trading_state,
        signals=signals,
        aggregated=aggregated,
        reliability=reliability,
        abstentions=abstentions,
        ranked=ranked,
        decisions=decisions,
        orders=(*entries, *exits),
        risk_events=(*advanced.events, *evaluation.events),
        equity=equity,
        readiness=cycle_readiness(
            config,
            calendar.equities,
            now,
            cycle_no=detector_state.cycle,
            cycle_interval=cycle_interval,
            reading=reading,
            reference_sessions=len(series),
            risk=evaluation.state,
            strategies=strategies,
            abstentions=abstentions,
        ),
    )


def apply_fills(
    state: EngineState, fills: Sequence[Fill], orders: Mapping[str, Order], config: EngineConfig, now: datetime
) -> FillOutcome:
    """Turn fills of entry orders into managed positions and fills of exits into closed trades.

    `orders` maps client order ids to the orders the fills belong to. A position carries the
    fees of its entry fills; a partial exit fill closes that part of the trade, charged its
    share of them: the rest stays managed with the rest of the fees.
    """
    manager = RiskManager(config.risk, lambda symbol, moment: True)
    risk = state.risk
    positions = {p.trade_id: p for p in state.positions}
    pending = dict(state.pending_entries)
    performance = dict(state.performance)
    opened: list[ManagedPosition] = []
    closed: list[ClosedTrade] = []
    updates: list[WeightUpdate] = []
    events: list[RiskEvent] = []
    for fill in fills:
        order = orders[fill.client_order_id]
        if order.intent == "entry":
            # The proposal stays pending until its order is final: a later partial fill adds to the position.
            proposal = pending.get(order.client_order_id)
            if proposal is None:
                continue
            position = positions.get(order.client_order_id)
            if position is None:
                position = open_position(
                    proposal, order.client_order_id, fill.qty, fill.price, fill.ts_event, entry_fees=fill.fee
                )
            else:
                # A later part grows the trade opened by the first: its horizon, extremes and any
                # exit already decided stay.
                qty = position.qty + fill.qty
                position = replace(
                    position,
                    qty=qty,
                    entry=(position.entry * position.qty + fill.price * fill.qty) / qty,
                    entry_fees=position.entry_fees + fill.fee,
                )
            positions[position.trade_id] = position
            opened.append(position)
            continue
        position = positions.get(order.trade_id or "")
        if position is None:
            continue
        reason = ExitReason(order.reason)
        trade = close_position(position, fill.price, fill.ts_event, reason, fill.fee, qty=fill.qty)
        closed.append(trade)
        if trade.rest is not None:
            positions[position.trade_id] = trade.rest
        else:
            del positions[position.trade_id]
        perf, update = record_trade(
            performance.get(position.strategy) or initial_performance(position.strategy),
            trade.realized_r,
            fill.ts_event,
        )
        performance[position.strategy] = perf
        updates.append(update)
        if risk is not None:
            transition = manager.record_trade_close(risk, fill.ts_event, trade.pnl)
            risk = transition.state
            events.extend(transition.events)
    new_state = replace(
        state,
        risk=risk,
        positions=tuple(sorted(positions.values(), key=lambda p: p.trade_id)),
        performance=performance,
        pending_entries=pending,
    )
    return FillOutcome(new_state, tuple(opened), tuple(closed), tuple(updates), tuple(events))


def settle_submissions(state: EngineState, accepted: Collection[str], refused: Mapping[str, str | None]) -> EngineState:
    """What the broker's answers to orders change: `accepted` are the ids of orders it accepted
    (placed, or found placed after an unknown outcome); `refused` maps the ids of orders refused
    (by HYDRA before sending, or by the broker) to the code of a refusal that will not change
    within the view, or None for one that may pass later (a closed market, buying power).

    Each accepted entry counts as a trade of the day; refusals spend nothing of the day's trade
    limit. A refused order ends (`forget_orders`), and an entry refused for a lasting reason
    makes its view a `RefusedView` until the proposal's horizon ends.
    """
    entries = state.pending_entries
    risk = state.risk
    counted = sum(1 for client_order_id in accepted if client_order_id in entries)
    if risk is not None and counted:
        risk = risk.count_trades(counted)
    lasting = tuple(
        RefusedView(proposal.strategy, proposal.symbol, proposal.side, code, proposal.ts_event + proposal.horizon)
        for client_order_id, code in refused.items()
        if code is not None and (proposal := entries.get(client_order_id)) is not None
    )
    settled = replace(state, risk=risk, refused_views=(*state.refused_views, *lasting))
    return forget_orders(settled, list(refused))


def forget_orders(state: EngineState, client_order_ids: Sequence[str]) -> EngineState:
    """Orders that reached a final state (filled, cancelled, rejected, expired, or refused unsent).

    An entry opens nothing more. An exit order that ended with its position still held (the
    rest of a day order expired, a refusal) is sent again at the next cycle its market is
    open: the exit stays decided.
    """
    ended = set(client_order_ids)
    pending = {k: v for k, v in state.pending_entries.items() if k not in ended}
    positions = tuple(
        replace(p, pending_exit=replace(p.pending_exit, order_id=None))
        if p.pending_exit is not None and p.pending_exit.order_id in ended
        else p
        for p in state.positions
    )
    return replace(state, pending_entries=pending, positions=positions)


@dataclass(frozen=True, slots=True)
class PositionDifference:
    """A symbol whose managed quantity differs from what the broker holds (signed: negative is short)."""

    symbol: str
    managed_qty: float
    broker_qty: float
    resolution: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    state: EngineState
    closed: tuple[ClosedTrade, ...]
    differences: tuple[PositionDifference, ...]


def reconcile_positions(
    state: EngineState,
    broker_qty: Mapping[str, float],
    prices: Mapping[str, float],
    working_symbols: frozenset[str],
    now: datetime,
    outside_fills: Sequence[Fill] = (),
) -> Reconciliation:
    """Make the managed positions agree with the broker's holdings; the broker wins.

    Symbols with an order still working are skipped: their fills are still arriving. A
    managed quantity the broker no longer holds (closed by hand, liquidated, lost in a crash)
    is closed as 'reconcile', newest trade first, at the prices the broker sold it at:
    `outside_fills` are the broker's fills of orders HYDRA did not place; those that reduce
    the managed side, made since the symbol's oldest trade opened and after the fills an earlier
    reconciliation weighed (`state.outside_fills_seen`), explain the quantity gone, newest
    first, each charged its fee pro rata. What no such fill explains closes at the symbol's
    last price (else the entry), with no exit fee. A trade closed in part stays open for the rest, each part's P&L kept
    (core.positions.close_position). A close carries the entry fees of the part closed; it
    feeds neither the strategy's statistics nor the loss streak, since no strategy chose that
    exit. A holding larger than the managed quantity stays unmanaged: it counts in the book
    and so in every exposure limit, but HYDRA places no stop on it.

    A difference that stays (an unmanaged excess) is reported once, and again only when
    either quantity changes: `state.standing_differences` remembers it.
    """
    managed = _managed_qty(state)
    positions = list(state.positions)
    standing = dict(state.standing_differences)
    seen = {symbol: ts for symbol, ts in state.outside_fills_seen.items() if symbol in managed}
    closed: list[ClosedTrade] = []
    differences: list[PositionDifference] = []
    for symbol in sorted((managed.keys() | broker_qty.keys() | standing.keys()) - working_symbols):
        held = broker_qty.get(symbol, 0.0)
        expected = managed.get(symbol, 0.0)
        if _agrees(held, expected):
            standing.pop(symbol, None)
            continue
        missing = _missing_at_broker(expected, held)
        if missing <= _QTY_TOLERANCE * abs(expected):
            known = standing.get(symbol)
            standing[symbol] = (expected, held)
            if known is None or not (_agrees(known[0], expected) and _agrees(known[1], held)):
                differences.append(
                    PositionDifference(symbol, expected, held, "broker holds more: the excess stays unmanaged")
                )
            continue
        standing.pop(symbol, None)
        since = min(p.opened_at for p in positions if p.symbol == symbol)
        if symbol in seen:
            since = max(since, seen[symbol])
        weighed = sorted(
            (f for f in outside_fills if f.symbol == symbol and f.ts_event > since),
            key=lambda f: f.ts_event,
            reverse=True,
        )
        if weighed:
            seen[symbol] = weighed[0].ts_event
        reducing = Side.SELL if expected > 0 else Side.BUY
        exits = [f for f in weighed if f.side is reducing]
        at_last_price = _close_missing(positions, symbol, missing, exits, prices.get(symbol), now, closed)
        resolution = f"broker wins: managed qty {missing:g} closed as 'reconcile'"
        if at_last_price > _QTY_TOLERANCE * missing:
            resolution += f"; {at_last_price:g} of it at the last price, no fill at the broker explaining it"
        differences.append(PositionDifference(symbol, expected, held, resolution))
    reconciled = replace(
        state,
        positions=tuple(sorted(positions, key=lambda p: p.trade_id)),
        standing_differences=standing,
        outside_fills_seen=seen,
    )
    return Reconciliation(reconciled, tuple(closed), tuple(differences))


def short_at_broker(
    state: EngineState, broker_qty: Mapping[str, float], working_symbols: frozenset[str]
) -> dict[str, datetime]:
    """Symbols whose managed quantity the broker no longer fully holds, each with when its oldest
    managed trade opened: since when the broker's fills can explain what is gone."""
    managed = _managed_qty(state)
    short = {
        symbol
        for symbol, expected in managed.items()
        if symbol not in working_symbols
        and _missing_at_broker(expected, broker_qty.get(symbol, 0.0)) > _QTY_TOLERANCE * abs(expected)
    }
    opened: dict[str, datetime] = {}
    for position in state.positions:
        if position.symbol in short:
            opened[position.symbol] = min(opened.get(position.symbol, position.opened_at), position.opened_at)
    return opened


def _managed_qty(state: EngineState) -> dict[str, float]:
    managed: dict[str, float] = {}
    for position in state.positions:
        managed[position.symbol] = managed.get(position.symbol, 0.0) + position.side.sign * position.qty
    return managed


def _agrees(held: float, expected: float) -> bool:
    return abs(held - expected) <= _QTY_TOLERANCE * max(1.0, abs(held), abs(expected))


def _missing_at_broker(expected: float, held: float) -> float:
    """How much of the managed quantity the broker no longer holds in the managed direction."""
    if not expected:
        return 0.0
    kept = max(0.0, held * math.copysign(1.0, expected))
    return max(0.0, abs(expected) - kept)


def _close_missing(
    positions: list[ManagedPosition],
    symbol: str,
    missing: float,
    exits: Sequence[Fill],
    last_price: float | None,
    now: datetime,
    closed: list[ClosedTrade],
) -> float:
    """Close `missing` of the symbol's positions (newest first) at the `exits` (newest first), in
    parts where a fill and a trade do not match in size; returns the quantity no exit explained."""
    unexplained = 0.0
    remaining = [f.qty for f in exits]
    used = 0
    for position in sorted(
        (p for p in positions if p.symbol == symbol), key=lambda p: (p.opened_at, p.trade_id), reverse=True
    ):
        if missing <= _QTY_TOLERANCE:
            break
        positions.remove(position)
        rest: ManagedPosition | None = position
        while rest is not None and missing > _QTY_TOLERANCE * rest.qty:
            qty = min(missing, rest.qty)
            if used < len(exits):
                fill = exits[used]
                qty = min(qty, remaining[used])
                trade = close_position(
                    rest, fill.price, fill.ts_event, ExitReason.RECONCILE, fill.fee * qty / fill.qty, qty=qty
                )
                remaining[used] -= trade.position.qty
                if remaining[used] <= _QTY_TOLERANCE * fill.qty:
                    used += 1
            else:
                trade = close_position(rest, last_price or rest.entry, now, ExitReason.RECONCILE, qty=qty)
                unexplained += trade.position.qty
            closed.append(trade)
            missing -= trade.position.qty
            rest = trade.rest
        if rest is not None:
            positions.append(rest)
    return unexplained


# Fractional quantities summed from fills differ from the broker's by a few ulps.
_QTY_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class _Market:
    """The per-symbol views of a snapshot the cycle needs, computed once."""

    now: datetime
    last_prices: dict[str, float]
    daily_volatility: dict[str, float]

    @classmethod
    def of(cls, snapshot: MarketSnapshot, now: datetime) -> _Market:
        last_prices: dict[str, float] = {}
        daily: dict[str, float] = {}
        for symbol in snapshot.bar_symbols():
            bars = snapshot.closed_bars(symbol, now)
            if not bars.size:
                continue
            last_prices[symbol] = float(bars.close[-1])
            returns, bars_per_day = _volatility_window(symbol, snapshot.timeframe)
            sigma = snapshot.from_bars(
                ("daily volatility", symbol), bars.tail(returns + 1), partial(_daily_volatility, bars_per_day)
            )
            if sigma is not None:
                daily[symbol] = sigma
        return cls(now, last_prices, daily)


def _volatility_window(symbol: str, timeframe: Timeframe) -> tuple[int, float]:
    """How many bar returns a symbol's daily volatility is measured over, and its bars a day."""
    if not timeframe.intraday:
        return MIN_VOLATILITY_RETURNS, 1.0
    bar_minutes = timeframe.length / MINUTE
    return max(math.ceil(VOLATILITY_MINUTES / bar_minutes), MIN_VOLATILITY_RETURNS), (
        MINUTES_PER_DAY[is_crypto(symbol)] / bar_minutes
    )


def _daily_volatility(bars_per_day: float, bars: BarArrays) -> float | None:
    """The std of the bars' log returns, scaled to the bars of the symbol's day."""
    if bars.size <= 2:
        return None
    sigma = float(np.diff(np.log(bars.close)).std(ddof=1))
    if not math.isfinite(sigma) or sigma <= 0:
        return None
    return sigma * math.sqrt(bars_per_day)


def regime_series(
    snapshot: MarketSnapshot, sessions: Sessions, now: datetime, config: RegimeConfig
) -> tuple[SessionSeries, tuple[str, ...]]:
    """The reference index's session closes known at `now`, with its gauges aligned on them, and
    the names of the gauges that had values.

    Daily bars give the closed sessions; the bars of the cycle's timeframe add the sessions the
    daily bars do not hold yet (today's, in progress, closes at its latest price).
    """
    reference = _session_closes_of(snapshot, config.reference, sessions, now)
    index = reference[0]
    gauges: dict[str, FloatArray] = {}
    for name, values in (
        (config.fear_series, _series_by_session(snapshot, config.fear_series, sessions)),
        (config.fear_symbol, _session_closes_of(snapshot, config.fear_symbol, sessions, now)),
        (config.credit_series, _series_by_session(snapshot, config.credit_series, sessions)),
        (config.credit_symbol, _session_closes_of(snapshot, config.credit_symbol, sessions, now)),
    ):
        if values[0].size:
            gauges[name] = aligned(index, values)
    series = SessionSeries(
        sessions=index,
        close=reference[1],
        fear_level=gauges.get(config.fear_series),
        fear_price=gauges.get(config.fear_symbol),
        credit_spread=gauges.get(config.credit_series),
        credit_price=gauges.get(config.credit_symbol),
    )
    return series, tuple(gauges)


def _session_closes_of(snapshot: MarketSnapshot, symbol: str, sessions: Sessions, now: datetime) -> SessionValues:
    daily = snapshot.bar_arrays(symbol, "1Day")
    # A session's daily bar does not change once it closed: the closes are kept while the daily
    # window and the number of closed sessions stay the same (all day in a live session).
    closed = sessions.closed_by(now)
    from_daily = snapshot.from_bars(
        ("daily session closes", symbol, closed), daily, lambda bars: session_closes(bars, sessions, now, daily=True)
    )
    if not snapshot.timeframe.intraday:
        return from_daily
    intraday = snapshot.closed_bars(symbol, now)
    if from_daily[0].size:
        # Only the sessions after the last daily bar's: today's, and any the daily feed has not delivered.
        after = sessions.close_of(int(from_daily[0][-1]))
        intraday = intraday.rows(intraday.count_before(after), intraday.size)
    return merge_closes(from_daily, session_closes(intraday, sessions, now, daily=False))


def _series_by_session(snapshot: MarketSnapshot, name: str, sessions: Sessions) -> SessionValues:
    """A market series' values by the session of their date (the UTC date they are stamped with)."""
    frame = snapshot.table("market_series")
    if frame.is_empty():
        return np.empty(0, dtype=np.int64), np.empty(0)
    return snapshot.from_table("market_series", ("by session", name), lambda rows: _by_session(rows, name, sessions))


def _by_session(frame: pl.DataFrame, name: str, sessions: Sessions) -> SessionValues:
    rows = frame.filter(pl.col("series") == name).sort("ts_event")
    index = sessions.on_days(micros_of(rows.get_column("ts_event")))
    values = rows.get_column("value").cast(pl.Float64).to_numpy()
    found = index != NOT_A_SESSION
    index, values = index[found], values[found]
    if not index.size:
        return np.empty(0, dtype=np.int64), np.empty(0)
    last_of_session = np.append(index[1:] != index[:-1], True)  # a revised value replaces the first
    return index[last_of_session].astype(np.int64), values[last_of_session]


def _too_few_sessions(reference: str, sessions: int) -> str:
    needed = SESSION_WINDOWS.sessions_needed
    if not sessions:
        return f"no regime: no {reference} bars to read sessions from"
    return f"no regime: {sessions} sessions of {reference} closes, {needed} needed"


def _evaluate(
    strategies: Sequence[Strategy],
    snapshot: MarketSnapshot,
    reading: RegimeReading,
    now: datetime,
    config: EngineConfig,
    holdings: Mapping[str, float],
    entered: Mapping[str, frozenset[tuple[str, Side]]],
) -> tuple[dict[str, StrategyOutput], dict[str, Reason]]:
    outputs: dict[str, StrategyOutput] = {}
    abstentions: dict[str, Reason] = {}
    for strategy in strategies:
        params = getattr(config.strategies, strategy.name)
        if not params.enabled:
            abstentions[strategy.name] = DISABLED_IN_CONFIGURATION
            continue
        missing = missing_inputs(strategy, snapshot)
        if missing is not None:
            abstentions[strategy.name] = missing
            continue
        context = StrategyContext(
            snapshot=snapshot,
            regime=reading,
            now=now,
            params=params,
            holdings=holdings,
            entered=entered.get(strategy.name, frozenset()),
        )
        try:
            output = strategy.evaluate(context)
        except Exception as error:  # one broken strategy must not stop the others or the exits
            abstentions[strategy.name] = Reason(ReasonCode.ERROR, f"{type(error).__name__}: {error}")
            continue
        if output.abstention is not None:
            abstentions[strategy.name] = output.abstention
        outputs[strategy.name] = output
    return outputs, abstentions


def _entered_views(
    positions: Iterable[ManagedPosition], working: Iterable[TradeProposal], refused: Iterable[RefusedView]
) -> dict[str, frozenset[tuple[str, Side]]]:
    """Per strategy, the (symbol, side) of its managed positions, of its entries still working and
    of its views refused for good."""
    entered: dict[str, set[tuple[str, Side]]] = {}
    views: Iterable[ManagedPosition | TradeProposal | RefusedView] = (*positions, *working, *refused)
    for view in views:
        entered.setdefault(view.strategy, set()).add((view.symbol, view.side))
    return {strategy: frozenset(views) for strategy, views in entered.items()}


def _eligible_proposals(
    strategies: Sequence[Strategy],
    outputs: Mapping[str, StrategyOutput],
    reading: RegimeReading | None,
    may_trade: bool,
) -> tuple[TradeProposal, ...]:
    """Proposals of strategies serving the regime; with no regime known yet, only those events drive."""
    if not may_trade:
        return ()
    serving = {
        s.name for s in strategies if s.overrides_regime or (reading is not None and reading.regime in s.regimes)
    }
    return tuple(p for name, output in outputs.items() if name in serving for p in output.proposals)


def _apply_advice(
    proposals: tuple[TradeProposal, ...], advice: tuple[ExposureAdvice, ...]
) -> tuple[tuple[TradeProposal, ...], tuple[RiskDecision, ...]]:
    """Before a market-moving event, other strategies open nothing new on the advised symbols."""
    reduce = {a.symbol: a for a in advice if a.exposure_multiplier < 1.0}
    kept: list[TradeProposal] = []
    blocked: list[RiskDecision] = []
    for proposal in proposals:
        advised = reduce.get(proposal.symbol)
        if advised is None or proposal.strategy == "macro_event":
            kept.append(proposal)
            continue
        reason = Reason(ReasonCode.EVENT_EXPOSURE, f"{advised.reason} (until {advised.until.isoformat()})")
        blocked.append(RiskDecision(proposal=proposal, approved=False, qty=0.0, notional=0.0, reasons=(reason,)))
    return tuple(kept), tuple(blocked)


def _with_agreement(proposal: TradeProposal, aggregated: tuple[AggregatedSignal, ...]) -> TradeProposal:
    """Scale confidence by the aggregate view of the symbol: agreement raises it, dissent lowers it."""
    view = next((a for a in aggregated if a.symbol == proposal.symbol), None)
    if view is None:
        return proposal
    agreement = proposal.side.sign * view.score * view.confidence
    confidence = min(1.0, max(0.0, proposal.confidence * (1.0 + AGREEMENT_WEIGHT * agreement)))
    return replace(proposal, confidence=confidence)


def _entry_order(decision: RiskDecision, now: datetime) -> Order:
    proposal = decision.proposal
    return Order(
        client_order_id=client_order_id(now, proposal.strategy, proposal.symbol, f"entry:{proposal.side.value}"),
        symbol=proposal.symbol,
        side=proposal.side,
        qty=decision.qty,
        strategy=proposal.strategy,
        intent="entry",
        decision_price=proposal.entry,
        ts_event=now,
        proposal_id=proposal.proposal_id,
        reason=proposal.reason,
    )


def _cycle_interval(state: EngineState, now: datetime) -> timedelta | None:
    if state.last_cycle_at is None or now <= state.last_cycle_at:  # a cycle replayed at its own time
        return state.cycle_interval
    since_last = now - state.last_cycle_at
    return since_last if state.cycle_interval is None else min(state.cycle_interval, since_last)


def _manage_positions(
    positions: tuple[ManagedPosition, ...],
    snapshot: MarketSnapshot,
    market: _Market,
    since: datetime | None,
    advice: tuple[ExposureAdvice, ...],
    now: datetime,
    cycle_interval: timedelta | None,
    is_tradable: Callable[[str, datetime], bool],
) -> tuple[tuple[ManagedPosition, ...], tuple[Order, ...]]:
    """Stops, targets, trails and time exits on every bar closed since the last cycle, in order.

    Cycles may be minutes apart (sim runs, a skipped minute): a stop crossed by any bar
    in between must exit, not only one crossed by the latest bar. Flatten before events when advised.

    An exit decided stays on its position (`PendingExit`) until the position is closed. Its
    order is sent only at a cycle at which the symbol's market is open, never while it is
    closed, and no other exit is decided while it works. A time exit whose deadline the
    market would reach closed (after the close, overnight, over a weekend) is taken at the
    last cycle before the close, not carried to the next session.
    """
    flatten = {a.symbol: a for a in advice if a.exposure_multiplier <= 0.0}
    kept: list[ManagedPosition] = []
    exits: list[Order] = []
    for position in positions:
        if position.pending_exit is None:
            intent: ExitIntent | None = None
            start = position.opened_at if since is None else max(position.opened_at, since)
            for unseen in _bars_closed_after(snapshot, position.symbol, start, now):
                position, intent = update_position(position, unseen)
                if intent is not None:
                    break
            price = market.last_prices.get(position.symbol)
            if intent is not None:
                position = replace(position, pending_exit=PendingExit(intent.reason, intent.price, intent.ts))
            elif price is not None and position.symbol in flatten:
                position = replace(position, pending_exit=PendingExit(ExitReason.EVENT, price, now))
            elif price is not None and _closed_until_deadline(position, now, cycle_interval, is_tradable):
                position = replace(position, pending_exit=PendingExit(ExitReason.TIME, price, now))
        pending = position.pending_exit
        if pending is not None and pending.order_id is None and is_tradable(position.symbol, now):
            order = _exit_order(position, pending, now)
            position = replace(position, pending_exit=replace(pending, order_id=order.client_order_id))
            exits.append(order)
        kept.append(position)
    return tuple(kept), tuple(exits)


def _closed_until_deadline(
    position: ManagedPosition,
    now: datetime,
    cycle_interval: timedelta | None,
    is_tradable: Callable[[str, datetime], bool],
) -> bool:
    """Whether this cycle is the last, before the position's deadline, at which its market is open.

    The next cycles are expected every `cycle_interval`: when the market is closed at each of
    them up to the first at or after the deadline, a time exit left to the deadline would be
    decided while the market is closed and could only be taken in the next session.
    """
    symbol, deadline = position.symbol, position.deadline
    if cycle_interval is None or now >= deadline or not is_tradable(symbol, now):
        return False
    moment = now + cycle_interval
    while not is_tradable(symbol, moment):
        if moment >= deadline:
            return True
        moment += cycle_interval
    return False


def _bars_closed_after(snapshot: MarketSnapshot, symbol: str, start: datetime, now: datetime) -> list[Bar]:
    """The bars of `symbol` that closed after `start` and by `now`, oldest first."""
    bars = snapshot.closed_bars(symbol, now)
    window = bars.rows(snapshot.closed_bars(symbol, start).size, bars.size)
    return [
        Bar(ts=snapshot.bar_end(symbol, from_micros(int(ts))), high=float(high), low=float(low), close=float(close))
        for ts, high, low, close in zip(window.ts, window.high, window.low, window.close, strict=True)
    ]


def _exit_order(position: ManagedPosition, pending: PendingExit, now: datetime) -> Order:
    return Order(
        client_order_id=client_order_id(now, position.strategy, position.symbol, f"exit:{position.trade_id}"),
        symbol=position.symbol,
        side=position.side.opposite,
        qty=position.qty,
        strategy=position.strategy,
        intent="exit",
        decision_price=pending.price,
        ts_event=now,
        trade_id=position.trade_id,
        reason=pending.reason.value,
    )
