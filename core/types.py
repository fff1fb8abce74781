"""Typed contracts between the stages of a cycle: frozen, validated where they are made."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Regime(StrEnum):
    TRENDING_UP = "TRENDING_UP"
    TRENDING_DOWN = "TRENDING_DOWN"
    MEAN_REVERTING = "MEAN_REVERTING"
    HIGH_VOL = "HIGH_VOL"
    CRASH = "CRASH"
    RECOVERY = "RECOVERY"


class Timeframe(StrEnum):
    """Bar timeframes of the warehouse and of backtests, named as Alpaca names them."""

    MIN_1 = "1Min"
    MIN_5 = "5Min"
    MIN_15 = "15Min"
    MIN_30 = "30Min"
    HOUR_1 = "1Hour"
    DAY_1 = "1Day"

    @property
    def length(self) -> timedelta:
        return _LENGTHS[self]

    @property
    def intraday(self) -> bool:
        return self is not Timeframe.DAY_1

    @classmethod
    def of_length(cls, length: timedelta) -> Timeframe | None:
        return next((timeframe for timeframe in cls if timeframe.length == length), None)


_LENGTHS = {
    Timeframe.MIN_1: timedelta(minutes=1),
    Timeframe.MIN_5: timedelta(minutes=5),
    Timeframe.MIN_15: timedelta(minutes=15),
    Timeframe.MIN_30: timedelta(minutes=30),
    Timeframe.HOUR_1: timedelta(hours=1),
    Timeframe.DAY_1: timedelta(days=1),
}


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    COOLDOWN = "COOLDOWN"  # after consecutive losses: no new entries until it ends
    HALTED = "HALTED"  # kill switch: no new entries until the next trading day; exits allowed


class ReasonCode(StrEnum):
    """Why a strategy did not decide or could not run, or why the risk manager cut or refused a
    proposal. A closed set, so reasons group across cycles (the README's "Reason codes" table
    says what each means); what varies from one cycle to the next is the reason's detail."""

    # A strategy: it abstained in a cycle (strategy_abstentions) or cannot run on a run's data (run_strategies).
    DISABLED = "disabled"
    TIMEFRAME_TOO_COARSE = "timeframe_too_coarse"
    INPUT_MISSING = "input_missing"
    INPUT_STALE = "input_stale"
    SYMBOL_MISSING = "symbol_missing"
    HISTORY_SHORT = "history_short"
    ERROR = "error"
    # A proposal: what cut or refused it (risk_decisions.reason_codes), in the order the checks run.
    EVENT_EXPOSURE = "event_exposure"
    KILL_SWITCH = "kill_switch"
    COOLDOWN = "cooldown"
    MAX_TRADES_PER_DAY = "max_trades_per_day"
    NOT_TRADABLE = "not_tradable"
    KELLY_NON_POSITIVE = "kelly_non_positive"
    CRYPTO_SHORT = "crypto_short"
    MAX_POSITION = "max_position"
    MAX_ASSET = "max_asset"
    MAX_TOTAL_EXPOSURE = "max_total_exposure"
    FRACTIONAL_SHORT = "fractional_short"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    # A cycle: what keeps it, or a strategy in it, from trading (cycle_readiness), besides the
    # codes above (history_short, kill_switch, cooldown and the strategies' abstentions).
    OBSERVATION = "observation"
    REGIME_NOT_SERVED = "regime_not_served"


@dataclass(frozen=True, slots=True)
class Reason:
    """A reason's stable code and its variable part (a table, a symbol, an age, a time): the code
    groups, the detail explains. Its text is "code: detail", or the code alone."""

    code: ReasonCode
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}" if self.detail else self.code.value


class ContractError(ValueError):
    """A stage built a value that breaks its contract."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _utc(ts: datetime) -> bool:
    return ts.tzinfo is not None and ts.utcoffset() == timedelta(0)


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's view of one symbol: score -1 (bearish) .. +1 (bullish)."""

    strategy: str
    symbol: str
    score: float
    confidence: float
    source: str
    ts_event: datetime
    half_life: timedelta

    def __post_init__(self) -> None:
        _require(_finite(self.score, self.confidence), f"signal {self.strategy}/{self.symbol}: non-finite value")
        _require(-1.0 <= self.score <= 1.0, f"signal {self.strategy}/{self.symbol}: score {self.score} outside [-1, 1]")
        _require(
            0.0 <= self.confidence <= 1.0,
            f"signal {self.strategy}/{self.symbol}: confidence {self.confidence} outside [0, 1]",
        )
        _require(self.half_life > timedelta(0), f"signal {self.strategy}/{self.symbol}: half_life must be positive")
        _require(_utc(self.ts_event), f"signal {self.strategy}/{self.symbol}: ts_event must be UTC-aware")

    @property
    def signal_id(self) -> str:
        return f"{self.strategy}:{self.symbol}:{self.source}:{self.ts_event.isoformat()}"


@dataclass(frozen=True, slots=True)
class TradeProposal:
    """A trade a strategy would like; the risk manager decides whether and how big."""

    strategy: str
    symbol: str
    side: Side
    entry: float
    stop: float
    target: float
    horizon: timedelta
    confidence: float
    signal_ids: tuple[str, ...]
    ts_event: datetime
    trail_pct: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        name = f"proposal {self.strategy}/{self.symbol}"
        _require(_finite(self.entry, self.stop, self.target, self.confidence), f"{name}: non-finite price")
        _require(self.entry > 0 and self.stop > 0 and self.target > 0, f"{name}: prices must be positive")
        if self.side is Side.BUY:
            _require(self.stop < self.entry < self.target, f"{name}: a buy needs stop < entry < target")
        else:
            _require(self.target < self.entry < self.stop, f"{name}: a sell needs target < entry < stop")
        _require(0.0 <= self.confidence <= 1.0, f"{name}: confidence outside [0, 1]")
        _require(self.horizon > timedelta(0), f"{name}: horizon must be positive")
        _require(self.trail_pct is None or 0 < self.trail_pct < 1, f"{name}: trail_pct must be in (0, 1)")
        _require(_utc(self.ts_event), f"{name}: ts_event must be UTC-aware")

    @property
    def risk_per_unit(self) -> float:
        return abs(self.entry - self.stop)

    @property
    def reward_risk(self) -> float:
        return abs(self.target - self.entry) / self.risk_per_unit

    @property
    def proposal_id(self) -> str:
        return f"{self.strategy}:{self.symbol}:{self.side.value}:{self.ts_event.isoformat()}"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk manager's answer to one proposal: an approved size, or the reasons it is not."""

    proposal: TradeProposal
    approved: bool
    qty: float
    notional: float
    reasons: tuple[Reason, ...] = ()
    kelly_fraction: float | None = None
    vol_scale: float | None = None

    def __post_init__(self) -> None:
        name = f"decision on {self.proposal.proposal_id}"
        _require(_finite(self.qty, self.notional), f"{name}: non-finite size")
        if self.approved:
            _require(self.qty > 0 and self.notional > 0, f"{name}: an approval needs a positive size")
        else:
            _require(self.qty == 0 and self.notional == 0, f"{name}: a rejection has zero size")
            _require(bool(self.reasons), f"{name}: a rejection needs a reason")

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(reason.code for reason in self.reasons)


@dataclass(frozen=True, slots=True)
class Order:
    """An instruction for a broker. client_order_id is deterministic so a retry never doubles it."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    strategy: str
    intent: str  # 'entry' | 'exit'
    decision_price: float
    ts_event: datetime
    order_type: str = "market"
    limit_price: float | None = None
    trade_id: str | None = None
    proposal_id: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        _require(self.qty > 0 and _finite(self.qty), f"order {self.client_order_id}: qty must be positive")
        _require(self.intent in ("entry", "exit"), f"order {self.client_order_id}: intent {self.intent!r}")
        _require(self.order_type in ("market", "limit", "stop_limit"), f"order {self.client_order_id}: type")
        _require(
            self.order_type == "market" or self.limit_price is not None,
            f"order {self.client_order_id}: a {self.order_type} order needs a limit price",
        )
        _require(_utc(self.ts_event), f"order {self.client_order_id}: ts_event must be UTC-aware")


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    ts_event: datetime

    def __post_init__(self) -> None:
        _require(self.qty > 0 and self.price > 0 and _finite(self.qty, self.price), f"fill {self.fill_id}: size/price")
        _require(self.fee >= 0 and _finite(self.fee), f"fill {self.fill_id}: fee must be >= 0")
        _require(_utc(self.ts_event), f"fill {self.fill_id}: ts_event must be UTC-aware")


@dataclass(frozen=True, slots=True)
class RegimeReading:
    regime: Regime
    confidence: float
    probabilities: dict[Regime, float] = field(default_factory=dict)
    evaluated: bool = False
    changed: bool = False
    model_version: str = "none"
    reason: str | None = None  # what the reading rests on, or why there is none
