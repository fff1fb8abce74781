"""Configuration models: frozen, validated, refusing unknown fields.

Pure: these models only describe and check configuration. Reading hydra.toml and the
environment happens in hydra.settings, outside core.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.types import Timeframe


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Mode(StrEnum):
    SIM = "sim"
    PAPER = "paper"
    BACKTEST = "backtest"


class RiskProfile(StrEnum):
    CONSERVATIVE = "conservative"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"


class RiskLimits(Frozen):
    """Hard limits. Fractions are of equity (0.03 = 3%)."""

    max_position: float = Field(gt=0, le=1)
    max_asset: float = Field(gt=0, le=1)
    max_total_exposure: float = Field(gt=0, le=1)
    max_daily_loss: float = Field(gt=0, le=1)
    max_consecutive_losses: int = Field(ge=1)
    cooldown_hours: float = Field(gt=0)
    max_trades_per_day: int = Field(ge=1)


PROFILE_CAPS: dict[RiskProfile, RiskLimits] = {
    RiskProfile.CONSERVATIVE: RiskLimits(
        max_position=0.01,
        max_asset=0.02,
        max_total_exposure=0.15,
        max_daily_loss=0.03,
        max_consecutive_losses=2,
        cooldown_hours=4.0,
        max_trades_per_day=20,
    ),
    RiskProfile.MODERATE: RiskLimits(
        max_position=0.03,
        max_asset=0.05,
        max_total_exposure=0.25,
        max_daily_loss=0.05,
        max_consecutive_losses=3,
        cooldown_hours=4.0,
        max_trades_per_day=30,
    ),
    RiskProfile.AGGRESSIVE: RiskLimits(
        max_position=0.05,
        max_asset=0.08,
        max_total_exposure=0.40,
        max_daily_loss=0.08,
        max_consecutive_losses=4,
        cooldown_hours=4.0,
        max_trades_per_day=50,
    ),
}

# A longer cooldown is stricter; for every other limit a smaller value is stricter.
STRICTER_WHEN_LARGER = frozenset({"cooldown_hours"})


class RiskConfig(Frozen):
    """A profile's caps, optionally tightened per limit; loosening is refused at start."""

    profile: RiskProfile = RiskProfile.MODERATE
    max_position: float | None = Field(default=None, gt=0, le=1)
    max_asset: float | None = Field(default=None, gt=0, le=1)
    max_total_exposure: float | None = Field(default=None, gt=0, le=1)
    max_daily_loss: float | None = Field(default=None, gt=0, le=1)
    max_consecutive_losses: int | None = Field(default=None, ge=1)
    cooldown_hours: float | None = Field(default=None, gt=0)
    max_trades_per_day: int | None = Field(default=None, ge=1)
    kelly_multiplier: float = Field(default=0.5, gt=0, le=0.5)
    target_volatility: float = Field(default=0.02, gt=0, description="daily vol that scales size to 1.0")

    @model_validator(mode="after")
    def _not_looser_than_profile(self) -> Self:
        caps = PROFILE_CAPS[self.profile]
        for name in RiskLimits.model_fields:
            chosen = getattr(self, name)
            cap = getattr(caps, name)
            if chosen is None:
                continue
            looser = chosen < cap if name in STRICTER_WHEN_LARGER else chosen > cap
            if looser:
                raise ValueError(
                    f"{name} = {chosen} is looser than the {self.profile.value} profile's "
                    f"limit {cap}; choose a stricter value or another profile"
                )
        return self

    @property
    def limits(self) -> RiskLimits:
        caps = PROFILE_CAPS[self.profile]
        chosen = {name: getattr(self, name) for name in RiskLimits.model_fields}
        return caps.model_copy(update={k: v for k, v in chosen.items() if v is not None})


CRYPTO_QUOTE = "/USD"

DEFAULT_WATCHLIST: tuple[str, ...] = (
    "BTC/USD",
    "ETH/USD",
    "SPY",
    "TLT",
    "GLD",
    "SLV",
    "GDX",
    "IGV",
    "CRM",
    "SHOP",
    "ADBE",
    "MSFT",
    "WDAY",
    "LZ",
    "HYG",
    "QQQ",
    "IWM",
    "VIXY",
    "UUP",
)


def is_crypto(symbol: str) -> bool:
    return symbol.endswith(CRYPTO_QUOTE)


class LiquidationCascadeParams(Frozen):
    enabled: bool = True
    symbols: tuple[str, ...] = ("BTC/USD", "ETH/USD")
    funding_threshold: float = Field(default=0.0005, gt=0, description="per-interval rate, 0.0005 = 0.05%")
    oi_drop_threshold: float = Field(default=0.05, gt=0, lt=1, description="fall within the window")
    oi_window_minutes: int = Field(default=60, ge=5)
    min_notional: float = Field(default=200.0, gt=0)
    max_notional: float = Field(default=2000.0, gt=0)
    oi_stable_minutes: int = Field(
        default=15, ge=5, description="open interest moving under a fifth of oi_drop_threshold this long: flush over"
    )
    bounce_window_minutes: int = Field(default=120, ge=5, description="how long after a flush the bounce long holds")
    reward_risk: float = Field(default=2.0, ge=1.5)

    @model_validator(mode="after")
    def _notional_range(self) -> Self:
        if self.min_notional > self.max_notional:
            raise ValueError("strategies.liquidation_cascade.min_notional exceeds max_notional")
        return self

    @model_validator(mode="after")
    def _stability_inside_window(self) -> Self:
        if self.oi_stable_minutes >= self.oi_window_minutes:
            raise ValueError("strategies.liquidation_cascade.oi_stable_minutes must be shorter than oi_window_minutes")
        return self


class MacroEventParams(Frozen):
    enabled: bool = True
    symbols: tuple[str, ...] = ("SPY", "TLT", "GLD", "SLV")
    event_types: tuple[str, ...] = ("NFP", "CPI", "FOMC")
    prepare_hours_before: tuple[float, float] = (1.0, 4.0)
    first_candle_minutes: int = Field(default=15, ge=1)
    trade_window_minutes: int = Field(default=120, ge=1)
    pre_event_exposure: float = Field(default=0.5, ge=0, le=1, description="exposure multiplier advised before")
    pre_event_stop_widening: float = Field(default=1.5, ge=1)
    min_candle_atr: float = Field(
        default=0.5, gt=0, description="first-candle move needed, in one-minute ATRs scaled to the candle's span"
    )
    reward_risk: float = Field(default=2.0, ge=1.5)

    @model_validator(mode="after")
    def _windows_ordered(self) -> Self:
        low, high = self.prepare_hours_before
        if not 0 <= low < high:
            raise ValueError("strategies.macro_event.prepare_hours_before must be (low, high) with 0 <= low < high")
        if self.first_candle_minutes >= self.trade_window_minutes:
            raise ValueError("strategies.macro_event.first_candle_minutes must be shorter than trade_window_minutes")
        return self


class PreciousMetalsParams(Frozen):
    enabled: bool = True
    symbols: tuple[str, ...] = ("GLD", "SLV", "GDX")
    margin_hike_hours: tuple[float, float] = (24.0, 48.0)
    ratio_z_threshold: float = Field(default=1.5, gt=0)
    ratio_lookback_days: int = Field(default=60, ge=5)
    premium_recovery_pct: float = Field(default=0.5, description="premium rise, in points of %, that flips long")
    premium_lookback_hours: float = Field(default=72.0, gt=0, description="how far back the premium's low may lie")
    reward_risk: float = Field(default=2.0, ge=1.5)

    @model_validator(mode="after")
    def _windows_ordered(self) -> Self:
        entry_hours, view_hours = self.margin_hike_hours
        if not 0 < entry_hours <= view_hours:
            raise ValueError("strategies.precious_metals.margin_hike_hours needs 0 < entry hours <= view hours")
        if self.premium_recovery_pct <= 0:
            raise ValueError("strategies.precious_metals.premium_recovery_pct must be positive")
        return self


class AiDisruptionParams(Frozen):
    enabled: bool = True
    impaired: tuple[str, ...] = ("LZ",)
    quality: tuple[str, ...] = ("CRM", "SHOP", "ADBE")
    sector_gauge: str = "IGV"
    short_days: tuple[int, int] = (1, 2)
    dip_days: tuple[int, int] = (3, 10)
    labs: tuple[str, ...] = ("openai", "anthropic", "google-deepmind", "meta-llama", "mistralai")
    velocity_baseline_days: int = Field(default=30, ge=2)
    lab_owners: tuple[tuple[str, str], ...] = Field(
        default=(("anthropics", "anthropic"),), description="(GitHub owner, lab) where the two names differ"
    )
    release_lookback_days: int = Field(default=21, ge=1, description="calendar days searched for the last release")
    dip_threshold: float = Field(default=0.03, gt=0, lt=1, description="fall below the pre-release close that is a dip")
    gauge_confirm_drawdown: float = Field(
        default=0.005, ge=0, lt=1, description="sector gauge's fall since the release that confirms the shock"
    )
    velocity_window_hours: float = Field(default=48.0, gt=0, description="the release's narrative window")
    velocity_z_scale: float = Field(default=3.0, gt=0, description="z-score at which a component reaches tanh(1)")
    macro_lookback_hours: float = Field(default=72.0, gt=0)
    hyg_drawdown: float = Field(default=0.005, gt=0, lt=1, description="HYG fall from its high that reads as weakness")
    base_confidence: float = Field(default=0.35, ge=0, le=1, description="confidence with no narrative velocity")
    max_confidence: float = Field(default=0.9, ge=0, le=1)
    reward_risk: float = Field(default=2.0, ge=1.5)
    stop_daily_vols: float = Field(default=1.0, gt=0, description="stop distance in daily volatilities")
    min_stop_pct: float = Field(default=0.01, gt=0, lt=1)
    max_stop_pct: float = Field(default=0.08, gt=0, lt=1)
    max_quote_age_minutes: float = Field(default=5.0, gt=0, description="older last bar: market closed, no proposal")

    @model_validator(mode="after")
    def _ordered_ranges(self) -> Self:
        if not 1 <= self.short_days[0] <= self.short_days[1] < self.dip_days[0] <= self.dip_days[1]:
            raise ValueError(
                "strategies.ai_disruption: short_days and dip_days must be (first, last) sessions from 1, "
                "the short window before the dip window"
            )
        if self.base_confidence > self.max_confidence:
            raise ValueError("strategies.ai_disruption.base_confidence exceeds max_confidence")
        if self.min_stop_pct > self.max_stop_pct:
            raise ValueError("strategies.ai_disruption.min_stop_pct exceeds max_stop_pct")
        return self


class CrossAssetParams(Frozen):
    enabled: bool = True
    symbols: tuple[str, ...] = ("SPY", "TLT", "GLD", "BTC/USD", "HYG")
    lag_hours: tuple[float, float] = (6.0, 24.0)
    estimation_days: int = Field(default=90, ge=10)
    risk_off_symbol: str = "TLT"
    proxies: tuple[str, ...] = Field(default=("VIXY",), description="bar symbols that lead but are not traded")
    vol_series: str = "VIX"
    credit_series: str = "BAMLH0A0HYM2"
    havens: tuple[str, ...] = ("TLT", "GLD")
    significance_z: float = Field(default=3.5, gt=0, description="|corr| must exceed significance_z / sqrt(n)")
    min_abs_corr: float = Field(default=0.1, ge=0, lt=1)
    min_observations: int = Field(default=60, ge=10, description="overlapping hourly pairs an estimate needs")
    risk_off_lookback_hours: float = Field(default=24.0, gt=0)
    spy_drop: float = Field(default=0.015, gt=0, lt=1)
    hyg_drawdown: float = Field(default=0.01, gt=0, lt=1, description="HYG fall from its high that reads as stress")
    vixy_rise: float = Field(default=0.08, gt=0)
    vix_rise: float = Field(default=0.15, gt=0, description="relative rise of the latest value over the one before")
    spread_widening: float = Field(default=0.15, gt=0, description="points of the HY spread, latest minus previous")
    min_modifier_effect: float = Field(default=0.05, ge=0, lt=0.5)
    modifier_half_life_hours: float = Field(default=6.0, gt=0)
    min_signal_score: float = Field(default=0.05, ge=0, lt=1)
    reward_risk: float = Field(default=2.0, ge=1.5)
    stop_daily_vols: float = Field(default=1.0, gt=0, description="stop distance in daily volatilities")
    min_stop_pct: float = Field(default=0.005, gt=0, lt=1)
    max_stop_pct: float = Field(default=0.05, gt=0, lt=1)
    max_quote_age_minutes: float = Field(default=5.0, gt=0, description="older last bar: market closed, no proposal")

    @model_validator(mode="after")
    def _ordered_ranges(self) -> Self:
        if not (1 <= self.lag_hours[0] <= self.lag_hours[1] and math.ceil(self.lag_hours[0]) <= self.lag_hours[1]):
            raise ValueError("strategies.cross_asset.lag_hours must be (shortest, longest) holding a whole hour >= 1")
        if self.min_stop_pct > self.max_stop_pct:
            raise ValueError("strategies.cross_asset.min_stop_pct exceeds max_stop_pct")
        return self


class StrategiesConfig(Frozen):
    liquidation_cascade: LiquidationCascadeParams = LiquidationCascadeParams()
    macro_event: MacroEventParams = MacroEventParams()
    precious_metals: PreciousMetalsParams = PreciousMetalsParams()
    ai_disruption: AiDisruptionParams = AiDisruptionParams()
    cross_asset: CrossAssetParams = CrossAssetParams()


class RegimeThresholds(Frozen):
    """The absolute criteria that name a regime (core/regime.py), for a broad US equity index.

    Returns and drawdowns are log values over sessions; volatility is annualised. The S&P 500's
    long-run volatility is about 16%: elevated is 1.5 times that, extreme 2.5 times; a shock is a
    session moving three long-run daily standard deviations.
    """

    elevated_volatility: float = Field(default=0.24, gt=0)
    extreme_volatility: float = Field(default=0.40, gt=0)
    shock_move: float = Field(default=0.03, gt=0, description="one session's move that is stress by itself")
    correction: float = Field(default=-0.10, lt=0, description="drawdown from the 252-session high")
    bear: float = Field(default=-0.20, lt=0)
    falling_week: float = Field(default=-0.05, lt=0)
    falling_month: float = Field(default=-0.08, lt=0)
    crash_week: float = Field(default=-0.07, lt=0, description="a week this bad is a crash from any height")
    rising_month: float = Field(default=0.05, gt=0)
    trend_t: float = Field(default=0.5, gt=0, description="t-statistic of the 63-session drift")
    fear_elevated: float = Field(default=25.0, gt=0, description="VIX level")
    fear_extreme: float = Field(default=35.0, gt=0)
    fear_rise_elevated: float = Field(default=0.25, gt=0, description="VIXY's log change over 5 sessions")
    fear_rise_extreme: float = Field(default=0.50, gt=0)
    credit_widening: float = Field(default=1.0, gt=0, description="HY spread points over 21 sessions")
    credit_drawdown: float = Field(default=-0.05, lt=0, description="HYG below its 63-session high")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not (
            self.elevated_volatility < self.extreme_volatility
            and self.bear < self.correction
            and self.crash_week <= self.falling_week
            and self.fear_elevated < self.fear_extreme
            and self.fear_rise_elevated < self.fear_rise_extreme
        ):
            raise ValueError(
                "engine.regime.thresholds: elevated < extreme (volatility, fear), bear < correction, "
                "crash_week <= falling_week"
            )
        return self


class RegimeConfig(Frozen):
    """What the regime is read from, and how a run starts."""

    reference: str = Field(default="SPY", description="the index whose sessions name the regime")
    fear_symbol: str = Field(default="VIXY", description="bars of a fear ETF (its rise is fear)")
    credit_symbol: str = Field(default="HYG", description="bars of a credit ETF (its drawdown is stress)")
    fear_series: str = Field(default="VIX", description="market_series of a fear index level")
    credit_series: str = Field(default="BAMLH0A0HYM2", description="market_series of a credit spread, in points")
    observation_cycles: int = Field(default=20, ge=0, description="first cycles that only observe: no orders")
    confirm_sessions: int = Field(default=2, ge=1, description="sessions a new regime must hold to replace one")
    thresholds: RegimeThresholds = RegimeThresholds()


class SnapshotConfig(Frozen):
    """How far back a cycle's snapshot reaches: bars over exchange sessions (a holiday never
    shortens the window), facts, which arrive around the clock, over days."""

    bar_sessions: int = Field(default=6, ge=1, description="bars of the cycle's timeframe: today and 5 sessions back")
    daily_bar_sessions: int = Field(
        default=300, ge=22, description="daily bars: the regime's 252-session drawdown and a margin"
    )
    facts_days: float = Field(default=45.0, gt=0, description="funding, notices, releases, headlines, series")


class EngineConfig(Frozen):
    """Everything the pure decision core needs; run_cycle receives exactly this."""

    watchlist: tuple[str, ...] = DEFAULT_WATCHLIST
    # The bars cycles decide on: minute bars live and in sim; a backtest of coarser history decides
    # on those, at their cadence (daily bars: once a session, at its open).
    timeframe: Timeframe = Timeframe.MIN_1
    snapshot: SnapshotConfig = SnapshotConfig()
    risk: RiskConfig = RiskConfig()
    regime: RegimeConfig = RegimeConfig()
    strategies: StrategiesConfig = StrategiesConfig()

    @field_validator("watchlist")
    @classmethod
    def _watchlist_unique(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if not symbols:
            raise ValueError("watchlist is empty")
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"watchlist repeats {', '.join(duplicates)}")
        return symbols

    @model_validator(mode="after")
    def _strategy_symbols_watched(self) -> Self:
        watched = set(self.watchlist)
        for name in StrategiesConfig.model_fields:
            params: Any = getattr(self.strategies, name)
            missing = [s for s in getattr(params, "symbols", ()) if s not in watched]
            if missing:
                raise ValueError(f"strategies.{name}.symbols not in the watchlist: {', '.join(missing)}")
        return self
