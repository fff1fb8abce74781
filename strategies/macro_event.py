"""Strategy 2: scheduled macro releases (NFP, CPI, FOMC) on SPY, TLT, GLD and SLV.

Before a market-moving release (importance 3, an `event_types` type, a known time of day) the
strategy advises the position manager to cut exposure and widen stops: the advice is issued
while the release is between `prepare_hours_before` = (low, high) hours away, so the trimming
happens while liquidity is normal, and it runs until the release's first candle has closed.
It is not re-issued inside the last `low` hours: the position manager holds advice until its
`until`. No signal accompanies it: a neutral score would only dilute the other strategies'
views in aggregation, and the advice itself is the recorded view.

After the release, the first `first_candle_minutes` minutes of trading set the direction: the
candle opens with the first one-minute bar at or after the scheduled time (an 08:30 ET
release reaches US equities at the 09:30 open) and counts only bars closed by `now` (a bar
stamped t closes at t + 1 min). Once it has closed, and until `trade_window_minutes` after
the release, each symbol whose candle moved more than `min_candle_atr` one-minute ATRs,
scaled by the square root of the candle's minutes (how far a random walk of one-minute
ranges travels in that span), gets a view in the candle's direction and, given a fresh
price, a trade with its stop one ATR beyond the candle's opposite extreme; a view already
entered keeps its signal but gets no second trade.

Scheduled releases override the regime: the strategy proposes in every regime. Releases of
the same minute share one candle, so they count once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import ClassVar

import numpy as np

from core.calendar import Timeframe
from core.config import MacroEventParams
from core.snapshot import from_micros
from core.types import Regime, Side, Signal, TradeProposal
from strategies.base import BarNeeds, ExposureAdvice, StrategyContext, StrategyOutput, missing_inputs
from strategies.common import average_true_range, bracket, columns, confidence_from_excess

MARKET_MOVING = 3
ATR_WINDOW = 30
STOP_BUFFER_ATR = 1.0
PRICE_MAX_AGE = timedelta(minutes=5)
CANDLE_SCORE = 0.7
CANDLE_HALF_LIFE = timedelta(minutes=30)


class MacroEventScalper:
    name: ClassVar[str] = "macro_event"
    symbols: ClassVar[tuple[str, ...]] = ("SPY", "TLT", "GLD", "SLV")
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    # The calendar is ingested ahead: its newest release lies in the future unless the feed has
    # stopped for longer than the month between two NFP releases. Bars only need to be alive:
    # the advice needs none, and trades check their own symbol's price.
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType(
        {"economic_events": timedelta(days=35), "bars": timedelta(days=4)}
    )
    overrides_regime: ClassVar[bool] = True
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.MIN_1

    def bar_needs(self, params: MacroEventParams) -> BarNeeds:
        return BarNeeds(traded=tuple(symbol for symbol in params.symbols if symbol in self.symbols))

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        reason = missing_inputs(self, context.snapshot)
        if reason is not None:
            return StrategyOutput.abstain(reason)
        params: MacroEventParams = context.params
        now = context.now
        traded = [symbol for symbol in params.symbols if symbol in self.symbols]
        low, high = (timedelta(hours=hours) for hours in params.prepare_hours_before)
        candle = timedelta(minutes=params.first_candle_minutes)
        advice: list[ExposureAdvice] = []
        signals: list[Signal] = []
        proposals: list[TradeProposal] = []
        for event_type, title, at in self._releases(context, params):
            if low <= at - now <= high:
                advice += [
                    ExposureAdvice(
                        symbol=symbol,
                        exposure_multiplier=params.pre_event_exposure,
                        stop_widening=params.pre_event_stop_widening,
                        until=at + candle,
                        reason=f"{event_type} '{title}' at {at:%Y-%m-%d %H:%M} UTC",
                    )
                    for symbol in traded
                ]
            elif at <= now < at + timedelta(minutes=params.trade_window_minutes):
                for symbol in traded:
                    decided = self._first_candle(context, symbol, event_type, at, params)
                    if decided is None:
                        continue
                    signal, proposal = decided
                    signals.append(signal)
                    if proposal is not None:
                        proposals.append(proposal)
        return StrategyOutput(signals=tuple(signals), proposals=tuple(proposals), exposure_advice=tuple(advice))

    def _releases(self, context: StrategyContext, params: MacroEventParams) -> Iterator[tuple[str, str, datetime]]:
        events = context.snapshot.table("economic_events")
        table = columns(events, ("event_type", "title", "importance", "all_day", "ts_event"))
        ts, event_type = table["ts_event"], table["event_type"]
        moving = np.isin(event_type, params.event_types) & (table["importance"] >= MARKET_MOVING) & ~table["all_day"]
        rows = sorted(np.flatnonzero(moving).tolist(), key=lambda i: (ts[i], event_type[i]))
        if len({(ts[i], event_type[i]) for i in rows}) < len(rows):
            # One release from two sources: whose title counts has been up to polars' sort, whose
            # order of equal keys is its own, so polars is asked again, on the same rows.
            tied = events[np.flatnonzero(moving)].sort("ts_event", "event_type")
            first = tied.unique(subset="ts_event", keep="first", maintain_order=True)
            yield from first.select("event_type", "title", "ts_event").iter_rows()
            return
        seen: set[int] = set()
        for row in rows:
            if ts[row] not in seen:
                seen.add(ts[row])
                yield event_type[row], table["title"][row], from_micros(int(ts[row]))

    def _first_candle(
        self, context: StrategyContext, symbol: str, event_type: str, at: datetime, params: MacroEventParams
    ) -> tuple[Signal, TradeProposal | None] | None:
        """The first candle's view of the symbol and a trade on it; None while there is no view."""
        now = context.now
        closed = context.snapshot.closed_bars(symbol, now)
        first = closed.count_before(at)
        if first == closed.size:
            return None
        opened = from_micros(int(closed.ts[first]))
        candle_minutes = params.first_candle_minutes
        closes_at = opened + timedelta(minutes=candle_minutes)
        atr = average_true_range(closed.rows(0, first), ATR_WINDOW)
        if closes_at > now or atr is None or atr <= 0:
            return None
        candle = closed.rows(first, closed.count_before(closes_at))
        candle_open = float(candle.open[0])
        move = float(candle.close[-1]) - candle_open
        threshold = params.min_candle_atr * atr * math.sqrt(candle_minutes)
        if abs(move) <= threshold:
            return None
        side = Side.BUY if move > 0 else Side.SELL
        confidence = confidence_from_excess(abs(move) / threshold)
        signal = Signal(
            strategy=self.name,
            symbol=symbol,
            score=side.sign * CANDLE_SCORE,
            confidence=confidence,
            source=f"first_candle:{event_type}",
            ts_event=closes_at,
            half_life=CANDLE_HALF_LIFE,
        )
        last_bar = from_micros(int(closed.ts[-1]))
        entry = float(closed.close[-1])
        far_end = float(candle.low.min() if side is Side.BUY else candle.high.max())
        # A stale price cannot be an entry; a price back through the candle's far end has refuted it.
        stale, refuted = last_bar < now - PRICE_MAX_AGE, side.sign * (entry - far_end) <= 0
        if stale or refuted or (symbol, side) in context.entered:
            return signal, None
        proposal = bracket(
            strategy=self.name,
            symbol=symbol,
            side=side,
            entry=entry,
            risk=side.sign * (entry - far_end) + STOP_BUFFER_ATR * atr,
            reward_risk=params.reward_risk,
            horizon=at + timedelta(minutes=params.trade_window_minutes) - now,
            confidence=confidence,
            signal_ids=(signal.signal_id,),
            now=now,
            reason=f"{event_type} at {at:%H:%M} UTC: first {candle_minutes} min moved {move / candle_open:+.2%}",
        )
        return signal, proposal
