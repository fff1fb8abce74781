"""Strategy 3: precious-metals flows on GLD, SLV and GDX.

Three views, in order of precedence:

1. CME margin hike (bearish). The newest gold (GC) or silver (SI) margin notice known at `now`
   raises maintenance (change_pct > 0, in percent as the schema defines it): leveraged longs
   must post more or sell, and metals sell off over the next sessions. With
   `margin_hike_hours` = (entry, view) the bearish view holds for `view` hours after the
   notice and SELL proposals (equities can be shorted) are made in its first `entry` hours:
   CME posts after the close and the liquidation runs through the next two sessions, so a
   short opened later than a day after the notice chases a move mostly made. Confidence grows
   with the size of the hike. A later cut supersedes the hike.
2. Shanghai premium recovery (bullish). The premium of Shanghai gold over London (premium_pct)
   fell by at least `premium_recovery_pct` points to a low within `premium_lookback_hours`
   and has since recovered by more than that: Chinese demand is back. The view forms at the
   first fixing past the recovery and lasts a day, while the premium stays recovered.
3. Gold/silver ratio mean reversion. The z-score of GLD/SLV against its own history over
   `ratio_lookback_days` beyond +-`ratio_z_threshold`: ratio high (silver cheap) -> silver
   up, gold down; ratio low -> the opposite. The ratio is sampled daily (1Day bars, else
   one-minute closes resampled daily) and hourly from one-minute closes when there are
   fewer than MIN_RATIO_POINTS days of history (a young warehouse or a simulation). Both legs
   get a signal; only the silver leg is proposed, because silver's larger volatility makes
   most of the ratio's swings and a pair the risk manager may approve by halves is no hedge.

A margin hike in force silences views 2 and 3, signals and proposals: its forced liquidation
moves silver about twice as far as gold and swamps both a premium-driven bid and the ratio.
Between the premium and the ratio, each symbol trades the first view that proposes on it.

Only the bars input is required: margin notices are rare and the premium feed unofficial, so
a missing notice table or premium silences only the view that needs it.
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
from core.config import PreciousMetalsParams
from core.snapshot import MICROSECOND, BarArrays, MarketSnapshot, from_micros, micros
from core.types import Regime, Side, Signal, TradeProposal
from strategies.base import BarNeeds, StrategyContext, StrategyOutput, missing_inputs
from strategies.common import (
    FloatArray,
    TimeSeries,
    average_true_range,
    bracket,
    columns,
    confidence_from_excess,
    resample,
    zscore_of_last,
)

GOLD, SILVER = "GLD", "SLV"
METAL_PRODUCTS = ("GC", "SI")
BAR = timedelta(minutes=1)
PRICE_MAX_AGE = timedelta(minutes=5)
# Stops are two hourly ATRs away; seven hourly bars are about one US session.
HOURLY_ATR_WINDOW = 7
STOP_ATR = 2.0
MIN_RATIO_POINTS = 20
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# (bars timeframe, sampling period) in order of preference for the ratio's history.
RATIO_SAMPLINGS = (("1Day", DAY), ("1Min", DAY), ("1Min", HOUR))
RATIO_HORIZON_STEPS, RATIO_HALF_LIFE_STEPS = 5, 2
# Each 10 points of hike take its confidence 63% (1 - 1/e) of the remaining way to 0.9.
HIKE_SCALE_PCT = 10.0

HIKE_SCORE, PREMIUM_SCORE, RATIO_SCORE = -0.8, 0.6, 0.5
HIKE_HALF_LIFE = timedelta(hours=12)
PREMIUM_HALF_LIFE, PREMIUM_HORIZON = timedelta(hours=6), timedelta(days=1)


@dataclass(frozen=True, slots=True)
class View:
    symbol: str
    score: float
    confidence: float
    source: str
    ts_event: datetime
    half_life: timedelta
    horizon: timedelta
    proposes: bool
    why: str

    @property
    def side(self) -> Side:
        return Side.BUY if self.score > 0 else Side.SELL


def metals_notices(notices: pl.DataFrame) -> TimeSeries:
    """The change_pct of the metals notices that state one."""
    table = columns(notices, ("product", "ts_event", "change_pct"))
    stated = notices.get_column("change_pct").is_not_null().to_numpy()
    metals = np.flatnonzero(np.isin(table["product"], METAL_PRODUCTS) & stated)
    return TimeSeries.of(table["ts_event"][metals], table["change_pct"][metals])


def premium_fixings(premiums: pl.DataFrame) -> TimeSeries:
    table = columns(premiums, ("ts_event", "premium_pct"))
    return TimeSeries.of(table["ts_event"], table["premium_pct"])


def margin_hike(snapshot: MarketSnapshot, now: datetime, params: PreciousMetalsParams) -> tuple[float, datetime] | None:
    """The largest change_pct and time of the newest metals notice, when it is a hike still in view."""
    if snapshot.table("margin_notices").is_empty():
        return None
    # Notices come a few a month: sorted once per frame of the table, a cycle only looks up `now`.
    notices = snapshot.from_table("margin_notices", "metals notices in time order", metals_notices)
    known = int(np.searchsorted(notices.ts, micros(now), side="right"))
    if not known:
        return None
    newest = notices.ts[known - 1]
    noticed = from_micros(int(newest))
    change = float(notices.values[np.searchsorted(notices.ts, newest, side="left") : known].max())
    if change <= 0 or now - noticed > timedelta(hours=params.margin_hike_hours[1]):
        return None
    return change, noticed


def premium_recovery(
    snapshot: MarketSnapshot, now: datetime, params: PreciousMetalsParams
) -> tuple[float, datetime] | None:
    """The recovery from the recent low in points and the fixing that first showed it, while it holds."""
    if snapshot.table("metal_premiums").is_empty():
        return None
    fixings = snapshot.from_table("metal_premiums", "fixings in time order", premium_fixings)
    since = micros(now - timedelta(hours=params.premium_lookback_hours))
    recent = slice(
        int(np.searchsorted(fixings.ts, since, side="left")),
        int(np.searchsorted(fixings.ts, micros(now), side="right")),
    )
    ts, values = fixings.ts[recent], fixings.values[recent]
    if values.size < 3:
        return None
    low_at = int(np.argmin(values[:-1]))
    low = float(values[low_at])
    fall = float(values[: low_at + 1].max()) - low
    recovered = np.flatnonzero(values[low_at + 1 :] - low > params.premium_recovery_pct)
    if fall < params.premium_recovery_pct or recovered.size == 0 or values[-1] - low <= params.premium_recovery_pct:
        return None
    shown = from_micros(int(ts[low_at + 1 + int(recovered[0])]))
    if now - shown > PREMIUM_HORIZON:
        return None
    return float(values[-1]) - low, shown


def metal_ratio(
    snapshot: MarketSnapshot, now: datetime, lookback_days: int
) -> tuple[FloatArray, datetime, timedelta] | None:
    """GLD/SLV closes over the lookback, the newest sample's time and the sampling step."""
    since = now - timedelta(days=lookback_days)
    for timeframe, step in RATIO_SAMPLINGS:
        windows = [
            bars.rows(bars.count_before(since), bars.count_until(now - BAR))
            for bars in (snapshot.bar_arrays(symbol, timeframe) for symbol in (GOLD, SILVER))
        ]
        # Resampling is most of the cost: a history too short for a sampling is told by its ends.
        if min(most_samples(window, step) for window in windows) < MIN_RATIO_POINTS:
            continue
        gold, silver = (resample(window, step) for window in windows)
        paired, in_gold, in_silver = np.intersect1d(gold.ts, silver.ts, assume_unique=True, return_indices=True)
        if paired.size >= MIN_RATIO_POINTS:
            return gold.close[in_gold] / silver.close[in_silver], from_micros(int(paired[-1])), step
    return None


def most_samples(bars: BarArrays, step: timedelta) -> int:
    """How many samples resample(bars, step) can hold at most: one a bar and one a step spanned."""
    if not bars.size:
        return 0
    period = step // MICROSECOND
    return min(bars.size, int(bars.ts[-1]) // period - int(bars.ts[0]) // period + 1)


class PreciousMetalsFlow:
    name: ClassVar[str] = "precious_metals"
    symbols: ClassVar[tuple[str, ...]] = ("GLD", "SLV", "GDX")
    regimes: ClassVar[frozenset[Regime]] = frozenset(
        {Regime.HIGH_VOL, Regime.CRASH, Regime.RECOVERY, Regime.MEAN_REVERTING}
    )
    # US equity bars pause overnight and over weekends and holidays: older than that, the feed is down.
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"bars": timedelta(days=4)})
    overrides_regime: ClassVar[bool] = False
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.MIN_1

    def bar_needs(self, params: PreciousMetalsParams) -> BarNeeds:
        # The gold/silver ratio reads both metals, traded or not.
        return BarNeeds(
            traded=tuple(symbol for symbol in params.symbols if symbol in self.symbols), optional=(GOLD, SILVER)
        )

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        reason = missing_inputs(self, context.snapshot)
        if reason is not None:
            return StrategyOutput.abstain(reason)
        params: PreciousMetalsParams = context.params
        traded = [symbol for symbol in params.symbols if symbol in self.symbols]
        views = self._views(context, traded, params)
        signals = {
            view: Signal(
                strategy=self.name,
                symbol=view.symbol,
                score=view.score,
                confidence=view.confidence,
                source=view.source,
                ts_event=view.ts_event,
                half_life=view.half_life,
            )
            for view in views
        }
        proposals: list[TradeProposal] = []
        if context.regime.regime in self.regimes:
            for symbol in traded:
                chosen = next((view for view in views if view.symbol == symbol and view.proposes), None)
                if chosen is None or (symbol, chosen.side) in context.entered:
                    continue
                agreeing = tuple(
                    signal.signal_id
                    for view, signal in signals.items()
                    if view.symbol == symbol and view.score * chosen.score > 0
                )
                proposal = self._propose(context, chosen, agreeing, params)
                if proposal is not None:
                    proposals.append(proposal)
        return StrategyOutput(signals=tuple(signals.values()), proposals=tuple(proposals))

    def _views(self, context: StrategyContext, traded: list[str], params: PreciousMetalsParams) -> list[View]:
        """Every view that holds, in order of precedence."""
        snapshot, now = context.snapshot, context.now
        hike = margin_hike(snapshot, now, params)
        if hike is not None:
            change, noticed = hike
            entry_hours, view_hours = params.margin_hike_hours
            return [
                View(
                    symbol=symbol,
                    score=HIKE_SCORE,
                    confidence=confidence_from_excess(1.0 + change / HIKE_SCALE_PCT),
                    source="margin_hike",
                    ts_event=noticed,
                    half_life=HIKE_HALF_LIFE,
                    horizon=noticed + timedelta(hours=view_hours) - now,
                    proposes=now - noticed <= timedelta(hours=entry_hours),
                    why=f"CME metals margin hike of {change:.1f}% noticed {noticed:%Y-%m-%d %H:%M} UTC",
                )
                for symbol in traded
            ]
        views: list[View] = []
        recovery = premium_recovery(snapshot, now, params)
        if recovery is not None:
            rise, shown = recovery
            views += [
                View(
                    symbol=symbol,
                    score=PREMIUM_SCORE,
                    confidence=confidence_from_excess(rise / params.premium_recovery_pct),
                    source="premium_recovery",
                    ts_event=shown,
                    half_life=PREMIUM_HALF_LIFE,
                    horizon=PREMIUM_HORIZON,
                    proposes=True,
                    why=f"Shanghai premium recovered {rise:.2f} points from its low",
                )
                for symbol in traded
            ]
        ratio = metal_ratio(snapshot, now, params.ratio_lookback_days)
        zscore = None if ratio is None else zscore_of_last(ratio[0])
        if ratio is not None and zscore is not None and abs(zscore) >= params.ratio_z_threshold:
            _, sampled, step = ratio
            silver_sign = 1.0 if zscore > 0 else -1.0
            views += [
                View(
                    symbol=symbol,
                    score=sign * RATIO_SCORE,
                    confidence=confidence_from_excess(abs(zscore) / params.ratio_z_threshold),
                    source="gold_silver_ratio",
                    ts_event=sampled,
                    half_life=RATIO_HALF_LIFE_STEPS * step,
                    horizon=RATIO_HORIZON_STEPS * step,
                    proposes=symbol == SILVER,
                    why=f"gold/silver ratio z-score {zscore:+.2f} over {params.ratio_lookback_days} days",
                )
                for symbol, sign in ((GOLD, -silver_sign), (SILVER, silver_sign))
                if symbol in traded
            ]
        return views

    def _propose(
        self, context: StrategyContext, view: View, signal_ids: tuple[str, ...], params: PreciousMetalsParams
    ) -> TradeProposal | None:
        now = context.now
        closed = context.snapshot.closed_bars(view.symbol, now)
        if not closed.size or from_micros(int(closed.ts[-1])) < now - PRICE_MAX_AGE:
            return None
        atr = average_true_range(resample(closed, HOUR), HOURLY_ATR_WINDOW)
        if atr is None or atr <= 0:
            return None
        return bracket(
            strategy=self.name,
            symbol=view.symbol,
            side=view.side,
            entry=float(closed.close[-1]),
            risk=STOP_ATR * atr,
            reward_risk=params.reward_risk,
            horizon=view.horizon,
            confidence=view.confidence,
            signal_ids=signal_ids,
            now=now,
            reason=view.why,
        )
