"""Strategy 1: crypto liquidation cascades on BTC/USD and ETH/USD.

Perpetual futures funding above `funding_threshold` per interval means longs pay heavily to
stay levered: the market is crowded and fragile (bearish view). When open interest then
falls by more than `oi_drop_threshold` from its peak of the last `oi_window_minutes` while
the price falls too, levered longs are being liquidated into each other's stops: a cascade,
the strongest bearish view. Once open interest stops falling (it moves less than a fifth of
`oi_drop_threshold` over `oi_stable_minutes`) the forced selling is over and the price tends
to retrace part of the flush: a bullish bounce view for `bounce_window_minutes` after the
flush was detected, with the stop below the flush low.

One view per symbol, the first that holds:
1. cascade in progress (bearish, strongest);
2. bounce after a settled flush, unless a funding print *after* the flush is still above the
   threshold (leverage rebuilt: no bounce). Settled funding lags by up to 8 h, so a print from
   before the flush describes the leverage the flush has just liquidated, not the current one;
3. funding above the threshold, unless a flush has happened since that print (spent).

Alpaca crypto cannot be shorted: a bearish view becomes a SELL proposal only when the book
holds the coin, and that proposal is an exit of what is held (reduce-only, said in its
reason); without holdings the view stays a signal. The bounce is a BUY. Either is entered once,
though its view lasts many cycles. Sizing is the risk manager's: the notional bounds in the
parameters are quoted in the BUY's reason, not applied.

Venue symbols map to order symbols by quote: BTCUSDT -> BTC/USD. Open interest comes from the
'5m' history and 'spot' readings of the venue that published the newest row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import polars as pl

from core.calendar import Timeframe
from core.config import LiquidationCascadeParams
from core.snapshot import MICROSECOND, BarArrays, FloatArray, IntArray, MarketSnapshot, from_micros, micros, micros_of
from core.types import Reason, ReasonCode, Regime, Side, Signal, TradeProposal
from strategies.base import BarNeeds, StrategyContext, StrategyOutput, missing_inputs
from strategies.common import (
    average_true_range,
    bracket,
    confidence_from_excess,
    read_only,
    table_column,
    table_matches,
)

BAR = timedelta(minutes=1)
OPEN_INTEREST_PERIODS = ("5m", "spot")
ATR_WINDOW = 14
# A held long is exited with a stop two one-minute ATRs above: tight, because the cascade
# view is about the next minutes and a reclaimed price proves it wrong quickly.
EXIT_STOP_ATR = 2.0
# The bounce's stop sits half an ATR under the flush low, so a retest of the low by a tick
# does not stop it out while a new low (the flush resuming) does.
FLUSH_STOP_ATR = 0.5
STABLE_FRACTION = 0.2
# Bounces after forced selling typically retrace about half of the flush: a target beyond that
# means the rebound has already run too far to offer the reward:risk.
BOUNCE_RETRACE = 0.5

CASCADE_SCORE, BOUNCE_SCORE, FUNDING_SCORE = -0.9, 0.6, -0.5
CASCADE_HALF_LIFE, BOUNCE_HALF_LIFE, FUNDING_HALF_LIFE = timedelta(minutes=30), timedelta(hours=1), timedelta(hours=4)
CASCADE_HORIZON, BOUNCE_HORIZON, FUNDING_HORIZON = timedelta(hours=1), timedelta(hours=4), timedelta(hours=8)


def venue_symbol(symbol: str) -> str:
    """Binance's name of an order symbol: BTC/USD -> BTCUSDT."""
    return symbol.replace("/USD", "USDT")


@dataclass(frozen=True, slots=True)
class Funding:
    ts_event: datetime
    rate: float


@dataclass(frozen=True, slots=True)
class Flush:
    """The latest run of open-interest readings that had fallen past the threshold with the price."""

    detected: datetime  # first reading of the run
    drop: float  # deepest fall from the rolling peak within the run, as a fraction
    start_price: float  # the close a window before detection, before the fall
    low: float  # lowest traded price since then
    settled: bool  # open interest no longer falling
    observed: datetime  # the newest reading, when the view was formed


@dataclass(frozen=True, slots=True)
class View:
    source: str
    score: float
    confidence: float
    ts_event: datetime
    half_life: timedelta
    horizon: timedelta
    why: str
    flush: Flush | None = None  # the flush a bounce trades against


@dataclass(frozen=True, slots=True)
class Readings:
    """Open interest readings of one venue, one a time, oldest first (ts as core.snapshot.micros)."""

    ts: IntArray
    open_interest: FloatArray


@dataclass(frozen=True, slots=True)
class Facts:
    """Rows of a table in time order (by ts_event, then row number) and their times (core.snapshot.micros)."""

    rows: IntArray
    ts: IntArray

    def since(self, moment: datetime) -> Facts:
        start = int(np.searchsorted(self.ts, micros(moment), side="left"))
        return Facts(self.rows[start:], self.ts[start:])

    def until(self, moment: datetime) -> Facts:
        stop = int(np.searchsorted(self.ts, micros(moment), side="right"))
        return Facts(self.rows[:stop], self.ts[:stop])


def in_time_order(snapshot: MarketSnapshot, table: str, selection: tuple[tuple[str, tuple[str, ...]], ...]) -> Facts:
    """The table's rows holding, in each named column, one of its values, in time order.

    Sorted once per frame of the table (core.snapshot.TableMemo): facts arrive every few
    minutes at most, so a cycle only cuts the time window out of the order.
    """

    def sort(_: pl.DataFrame) -> Facts:
        # The snapshot's columns and matches of the table are those of this very frame, kept with it.
        ts = table_column(snapshot, table, "ts_event")
        selected = np.flatnonzero(
            np.logical_and.reduce(
                [
                    np.logical_or.reduce([table_matches(snapshot, table, name, value) for value in values])
                    for name, values in selection
                ]
            )
        )
        rows = selected[np.argsort(ts[selected], kind="stable")]
        return Facts(read_only(rows), read_only(ts[rows]))

    return snapshot.from_table(table, ("in time order", selection), sort)


def latest_funding(snapshot: MarketSnapshot, venue_name: str, now: datetime) -> Funding | None:
    if snapshot.table("funding_rates").is_empty():
        return None
    printed = in_time_order(snapshot, "funding_rates", (("symbol", (venue_name,)),)).until(now)
    rows = newest_venue(snapshot, "funding_rates", printed)
    if not rows.size:
        return None
    return Funding(
        from_micros(int(table_column(snapshot, "funding_rates", "ts_event")[rows[-1]])),
        float(table_column(snapshot, "funding_rates", "funding_rate")[rows[-1]]),
    )


def newest_venue(snapshot: MarketSnapshot, table: str, facts: Facts) -> IntArray:
    """Of the table's `facts`, the rows of the venue with the newest, in time order: two venues'
    series never interleave. Of two venues with facts at the newest time, the greater name's."""
    if not facts.rows.size:
        return facts.rows
    venues = snapshot.table(table).get_column("venue")
    newest = facts.rows[np.searchsorted(facts.ts, facts.ts[-1], side="left") :]
    venue = max(str(venues[int(row)]) for row in newest)
    mine: IntArray = facts.rows[table_matches(snapshot, table, "venue", venue)[facts.rows]]
    return mine


def open_interest_readings(snapshot: MarketSnapshot, venue_name: str, since: datetime, now: datetime) -> Readings:
    """The readings in [since, now] of the venue with the newest, one a time."""
    table = snapshot.table("open_interest")
    if table.is_empty():
        return Readings(np.empty(0, dtype=np.int64), np.empty(0))
    selection = (("symbol", (venue_name,)), ("period", OPEN_INTEREST_PERIODS))
    candidates = in_time_order(snapshot, "open_interest", selection).since(since).until(now)
    rows = newest_venue(snapshot, "open_interest", candidates)
    ts = table_column(snapshot, "open_interest", "ts_event")
    if np.any(ts[rows][1:] == ts[rows][:-1]):
        # Two readings of the venue at one time (a history and a spot reading): the one kept has
        # been the one polars' sort puts last, an order of equal keys that is its own, so polars
        # is asked again, on the same rows in the table's order.
        tied = table[np.sort(candidates.rows)].sort("ts_event", "venue")
        kept = tied.filter(pl.col("venue") == tied.get_column("venue")[-1]).unique(
            subset="ts_event", keep="last", maintain_order=True
        )
        return Readings(micros_of(kept.get_column("ts_event")), kept.get_column("open_interest").to_numpy())
    return Readings(
        ts[rows], np.asarray(table_column(snapshot, "open_interest", "open_interest")[rows], dtype=np.float64)
    )


def find_flush(
    readings: Readings, closed_bars: BarArrays, now: datetime, params: LiquidationCascadeParams
) -> Flush | None:
    """The latest flush among the readings, or None.

    A reading is flushing when open interest stands `oi_drop_threshold` below its peak of the
    preceding `oi_window_minutes` and the last closed price is below the one a window earlier.
    """
    window = timedelta(minutes=params.oi_window_minutes) // MICROSECOND
    ts, open_interest = readings.ts, readings.open_interest
    # The peak over (t - window, t]: a maximum over [first, i] for every reading i, from one reduceat
    # over the pairs (first_i, i + 1) whose odd members only delimit.
    first = np.searchsorted(ts, ts - window, side="right")
    bounds = np.column_stack((first, np.arange(1, ts.size + 1))).ravel()
    peak = np.maximum.reduceat(np.append(open_interest, 0.0), bounds)[::2]
    with np.errstate(invalid="ignore"):
        drop = 1.0 - open_interest / peak
    # The last close known at a time: that of the last bar closed (opened a minute before) by then,
    # found by its opening among the bars' own times rather than in a shifted copy of all of them.
    latest_opening = ts - BAR // MICROSECOND
    close, close_before = (
        np.where(known >= 0, closed_bars.close[known], np.nan)
        for known in (
            np.searchsorted(closed_bars.ts, moments, side="right") - 1
            for moments in (latest_opening, latest_opening - window)
        )
    )
    # A window of zero open interest drops by NaN (0 / 0), which polars, where this was first
    # written, orders above every number.
    flushing = ((drop >= params.oi_drop_threshold) | np.isnan(drop)) & (close < close_before)
    starts = np.flatnonzero(flushing & ~np.concatenate(([False], flushing[:-1])))
    if not starts.size:
        return None
    detected = int(ts[starts[-1]])
    reference = int(np.searchsorted(ts, micros(now - timedelta(minutes=params.oi_stable_minutes)), side="right"))
    lows = closed_bars.low[np.searchsorted(closed_bars.ts, detected - window) :]
    if reference == 0 or lows.size == 0:
        return None
    change = float(open_interest[-1]) / float(open_interest[reference - 1]) - 1
    return Flush(
        detected=from_micros(detected),
        drop=float(drop[(ts >= detected) & flushing].max()),
        start_price=float(close_before[starts[-1]]),
        low=float(lows.min()),
        settled=change >= -STABLE_FRACTION * params.oi_drop_threshold,
        observed=from_micros(int(ts[-1])),
    )


def choose_view(flush: Flush | None, funding: Funding, now: datetime, params: LiquidationCascadeParams) -> View | None:
    """The one view that holds, by the precedence in the module docstring."""
    crowded = funding.rate > params.funding_threshold
    if flush is not None and now - flush.detected <= timedelta(minutes=params.bounce_window_minutes):
        flush_confidence = confidence_from_excess(flush.drop / params.oi_drop_threshold)
        if not flush.settled:
            return View(
                "cascade",
                CASCADE_SCORE,
                flush_confidence,
                flush.observed,
                CASCADE_HALF_LIFE,
                CASCADE_HORIZON,
                f"cascade: open interest {flush.drop:.1%} below its peak with the price falling",
            )
        if not crowded or funding.ts_event < flush.detected:
            return View(
                "bounce",
                BOUNCE_SCORE,
                flush_confidence,
                flush.observed,
                BOUNCE_HALF_LIFE,
                BOUNCE_HORIZON,
                f"bounce: open interest settled after a {flush.drop:.1%} flush to {flush.low:,.2f}",
                flush=flush,
            )
    if not crowded or (flush is not None and flush.detected > funding.ts_event):
        return None
    return View(
        "funding",
        FUNDING_SCORE,
        confidence_from_excess(funding.rate / params.funding_threshold),
        funding.ts_event,
        FUNDING_HALF_LIFE,
        FUNDING_HORIZON,
        f"funding {funding.rate:.4%} per interval above {params.funding_threshold:.4%}: crowded longs",
    )


class LiquidationCascade:
    name: ClassVar[str] = "liquidation_cascade"
    symbols: ClassVar[tuple[str, ...]] = ("BTC/USD", "ETH/USD")
    regimes: ClassVar[frozenset[Regime]] = frozenset(
        {Regime.HIGH_VOL, Regime.CRASH, Regime.TRENDING_UP, Regime.TRENDING_DOWN}
    )
    # Funding prints every 8 h; open interest history comes every 5 minutes.
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType(
        {"bars": timedelta(minutes=5), "funding_rates": timedelta(hours=9), "open_interest": timedelta(minutes=15)}
    )
    overrides_regime: ClassVar[bool] = False
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.MIN_1

    def bar_needs(self, params: LiquidationCascadeParams) -> BarNeeds:
        return BarNeeds(traded=tuple(symbol for symbol in params.symbols if symbol in self.symbols))

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        reason = missing_inputs(self, context.snapshot)
        if reason is not None:
            return StrategyOutput.abstain(reason)
        params: LiquidationCascadeParams = context.params
        traded = [symbol for symbol in params.symbols if symbol in self.symbols]
        signals: list[Signal] = []
        proposals: list[TradeProposal] = []
        undecided: list[Reason] = []
        for symbol in traded:
            decided = self._view(context, symbol, params)
            if isinstance(decided, Reason):
                undecided.append(decided)
                continue
            view, closed_bars = decided
            if view is None:
                continue
            signal = Signal(
                strategy=self.name,
                symbol=symbol,
                score=view.score,
                confidence=view.confidence,
                source=view.source,
                ts_event=view.ts_event,
                half_life=view.half_life,
            )
            signals.append(signal)
            if context.regime.regime in self.regimes:
                proposal = self._propose(context, symbol, view, signal, closed_bars, params)
                if proposal is not None:
                    proposals.append(proposal)
        # A coin whose data cannot decide is named with its reason, whether or not the others decide.
        abstention = None
        if undecided:
            abstention = Reason(undecided[0].code, "; ".join(reason.detail for reason in undecided))
        if traded and len(undecided) == len(traded):
            return StrategyOutput.abstain(abstention or Reason(ReasonCode.SYMBOL_MISSING))
        return StrategyOutput(signals=tuple(signals), proposals=tuple(proposals), abstention=abstention)

    def _view(
        self, context: StrategyContext, symbol: str, params: LiquidationCascadeParams
    ) -> tuple[View | None, BarArrays] | Reason:
        """The symbol's view and its closed bars, or why its own data cannot decide: the tables'
        freshness (missing_inputs) is their freshest symbol's, so each coin's funding and open
        interest are held to the same ages here (one coin's feed may have failed)."""
        snapshot, now = context.snapshot, context.now
        name = venue_symbol(symbol)
        funding = latest_funding(snapshot, name, now)
        if funding is None:
            return Reason(ReasonCode.SYMBOL_MISSING, f"{symbol}: no {name} funding")
        stale = self._stale(symbol, f"{name} funding", funding.ts_event, now, "funding_rates")
        if stale is not None:
            return stale
        # Flushes matter from the funding print on (they spend it) and through the bounce window;
        # the rolling peak of the oldest reading needs a window of readings before it.
        window = timedelta(minutes=params.oi_window_minutes)
        since = min(funding.ts_event, now - timedelta(minutes=params.bounce_window_minutes)) - 2 * window
        readings = open_interest_readings(snapshot, name, since, now)
        if not readings.ts.size:
            return Reason(ReasonCode.SYMBOL_MISSING, f"{symbol}: no {name} open interest since {since:%Y-%m-%d %H:%M}")
        stale = self._stale(symbol, f"{name} open interest", from_micros(int(readings.ts[-1])), now, "open_interest")
        if stale is not None:
            return stale
        closed_bars = snapshot.closed_bars(symbol, now)
        if not closed_bars.size:
            return Reason(ReasonCode.SYMBOL_MISSING, f"{symbol}: no closed bars")
        return choose_view(find_flush(readings, closed_bars, now, params), funding, now, params), closed_bars

    def _stale(self, symbol: str, what: str, newest: datetime, now: datetime, table: str) -> Reason | None:
        age, max_age = now - newest, self.inputs[table]
        if age <= max_age:
            return None
        return Reason(ReasonCode.INPUT_STALE, f"{symbol}: {what}'s newest row is {age} old (max {max_age})")

    def _propose(
        self,
        context: StrategyContext,
        symbol: str,
        view: View,
        signal: Signal,
        closed_bars: BarArrays,
        params: LiquidationCascadeParams,
    ) -> TradeProposal | None:
        last_bar = from_micros(int(closed_bars.ts[-1]))
        atr = average_true_range(closed_bars, ATR_WINDOW)
        # A price older than the bars' own freshness limit cannot be an entry.
        if last_bar < context.now - self.inputs["bars"] or atr is None or atr <= 0:
            return None
        entry = float(closed_bars.close[-1])
        side = Side.BUY if view.flush is not None else Side.SELL
        if (symbol, side) in context.entered:
            return None
        if view.flush is not None:
            risk = entry - (view.flush.low - FLUSH_STOP_ATR * atr)
            room = view.flush.low + BOUNCE_RETRACE * (view.flush.start_price - view.flush.low)
            if entry + params.reward_risk * risk > room:
                return None
            reason = f"{view.why}; notional ${params.min_notional:,.0f}-${params.max_notional:,.0f}"
        else:
            held = context.holdings.get(symbol, 0.0)
            if held <= 0:
                return None
            risk = EXIT_STOP_ATR * atr
            reason = f"reduce-only exit: sell at most the {held:g} held, crypto cannot be shorted; {view.why}"
        return bracket(
            strategy=self.name,
            symbol=symbol,
            side=side,
            entry=entry,
            risk=risk,
            reward_risk=params.reward_risk,
            horizon=view.horizon,
            confidence=signal.confidence,
            signal_ids=(signal.signal_id,),
            now=context.now,
            reason=reason,
        )
