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
reason); without holdings the view stays a signal. The bounce is a BUY. Sizing is the risk
manager's: the notional bounds in the parameters are quoted in the BUY's reason, not applied.

Venue symbols map to order symbols by quote: BTCUSDT -> BTC/USD. Open interest comes from the
'5m' history and 'spot' readings of the venue that published the newest row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import ClassVar

import polars as pl

from core.config import LiquidationCascadeParams
from core.types import Regime, Side, Signal, TradeProposal
from strategies.base import StrategyContext, StrategyOutput, missing_inputs
from strategies.common import average_true_range, bracket, confidence_from_excess

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


def latest_funding(funding: pl.DataFrame, venue_name: str, now: datetime) -> Funding | None:
    rows = newest_venue(funding.filter((pl.col("symbol") == venue_name) & (pl.col("ts_event") <= now)))
    if rows.is_empty():
        return None
    return Funding(rows.get_column("ts_event")[-1], float(rows.get_column("funding_rate")[-1]))


def newest_venue(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows of the venue with the newest fact, sorted by time: two venues' series never interleave."""
    if rows.is_empty():
        return rows
    rows = rows.sort("ts_event", "venue")
    return rows.filter(pl.col("venue") == rows.get_column("venue")[-1])


def open_interest_readings(
    open_interest: pl.DataFrame, venue_name: str, since: datetime, now: datetime
) -> pl.DataFrame:
    rows = open_interest.filter(
        (pl.col("symbol") == venue_name)
        & pl.col("period").is_in(OPEN_INTEREST_PERIODS)
        & pl.col("ts_event").is_between(since, now)
    )
    return newest_venue(rows).unique(subset="ts_event", keep="last", maintain_order=True)


def find_flush(
    readings: pl.DataFrame, closed_bars: pl.DataFrame, now: datetime, params: LiquidationCascadeParams
) -> Flush | None:
    """The latest flush among the readings, or None.

    A reading is flushing when open interest stands `oi_drop_threshold` below its peak of the
    preceding `oi_window_minutes` and the last closed price is below the one a window earlier.
    """
    window = timedelta(minutes=params.oi_window_minutes)
    closes = closed_bars.select((pl.col("ts_event") + BAR).alias("closed_at"), "close")
    before = closes.rename({"closed_at": "closed_before", "close": "close_before"})
    marked = (
        readings.select("ts_event", "open_interest")
        .with_columns(
            peak=pl.col("open_interest").rolling_max_by("ts_event", window_size=window),
            window_start=pl.col("ts_event") - window,
        )
        .join_asof(closes, left_on="ts_event", right_on="closed_at", strategy="backward")
        .join_asof(before, left_on="window_start", right_on="closed_before", strategy="backward")
        .with_columns(drop=1.0 - pl.col("open_interest") / pl.col("peak"))
        .with_columns(
            flushing=(
                (pl.col("drop") >= params.oi_drop_threshold) & (pl.col("close") < pl.col("close_before"))
            ).fill_null(False)
        )
        .with_columns(starts=pl.col("flushing") & ~pl.col("flushing").shift(1, fill_value=False))
    )
    starts = marked.filter(pl.col("starts"))
    if starts.is_empty():
        return None
    detected: datetime = starts.get_column("ts_event")[-1]
    reference = readings.filter(pl.col("ts_event") <= now - timedelta(minutes=params.oi_stable_minutes))
    lows = closed_bars.filter(pl.col("ts_event") >= detected - window).get_column("low").to_numpy()
    if reference.is_empty() or lows.size == 0:
        return None
    change = float(readings.get_column("open_interest")[-1]) / float(reference.get_column("open_interest")[-1]) - 1
    drops = marked.filter((pl.col("ts_event") >= detected) & pl.col("flushing")).get_column("drop").to_numpy()
    return Flush(
        detected=detected,
        drop=float(drops.max()),
        start_price=float(starts.get_column("close_before")[-1]),
        low=float(lows.min()),
        settled=change >= -STABLE_FRACTION * params.oi_drop_threshold,
        observed=readings.get_column("ts_event")[-1],
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

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        reason = missing_inputs(self, context.snapshot)
        if reason is not None:
            return StrategyOutput.abstain(reason)
        params: LiquidationCascadeParams = context.params
        traded = [symbol for symbol in params.symbols if symbol in self.symbols]
        signals: list[Signal] = []
        proposals: list[TradeProposal] = []
        undecided: list[str] = []
        for symbol in traded:
            decided = self._view(context, symbol, params)
            if decided is None:
                undecided.append(symbol)
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
        if traded and len(undecided) == len(traded):
            return StrategyOutput.abstain(f"no funding, open interest or closed bars for {', '.join(undecided)}")
        return StrategyOutput(signals=tuple(signals), proposals=tuple(proposals))

    def _view(
        self, context: StrategyContext, symbol: str, params: LiquidationCascadeParams
    ) -> tuple[View | None, pl.DataFrame] | None:
        """The symbol's view and its closed bars; None when its data cannot decide."""
        snapshot, now = context.snapshot, context.now
        name = venue_symbol(symbol)
        funding = latest_funding(snapshot.table("funding_rates"), name, now)
        if funding is None:
            return None
        # Flushes matter from the funding print on (they spend it) and through the bounce window;
        # the rolling peak of the oldest reading needs a window of readings before it.
        window = timedelta(minutes=params.oi_window_minutes)
        since = min(funding.ts_event, now - timedelta(minutes=params.bounce_window_minutes)) - 2 * window
        readings = open_interest_readings(snapshot.table("open_interest"), name, since, now)
        closed_bars = snapshot.bars(symbol).filter(pl.col("ts_event") <= now - BAR)
        if readings.is_empty() or closed_bars.is_empty():
            return None
        return choose_view(find_flush(readings, closed_bars, now, params), funding, now, params), closed_bars

    def _propose(
        self,
        context: StrategyContext,
        symbol: str,
        view: View,
        signal: Signal,
        closed_bars: pl.DataFrame,
        params: LiquidationCascadeParams,
    ) -> TradeProposal | None:
        last_bar: datetime = closed_bars.get_column("ts_event")[-1]
        atr = average_true_range(closed_bars, ATR_WINDOW)
        # A price older than the bars' own freshness limit cannot be an entry.
        if last_bar < context.now - self.inputs["bars"] or atr is None or atr <= 0:
            return None
        entry = float(closed_bars.get_column("close")[-1])
        if view.flush is not None:
            side, risk = Side.BUY, entry - (view.flush.low - FLUSH_STOP_ATR * atr)
            room = view.flush.low + BOUNCE_RETRACE * (view.flush.start_price - view.flush.low)
            if entry + params.reward_risk * risk > room:
                return None
            reason = f"{view.why}; notional ${params.min_notional:,.0f}-${params.max_notional:,.0f}"
        else:
            held = context.holdings.get(symbol, 0.0)
            if held <= 0:
                return None
            side, risk = Side.SELL, EXIT_STOP_ATR * atr
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
