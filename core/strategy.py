"""The contract every strategy meets, checked by one test over strategies.REGISTRY.

It lives in core so the pipeline can call strategies without importing them; strategy
modules reach it through strategies.base.

A strategy is a pure function of a StrategyContext: the point-in-time snapshot, the current
regime, the time, its own parameters, what the book holds and which views it has entered. It
returns signals (its view, recorded and aggregated), proposals (trades it would like, which
the risk manager may size or refuse), modifiers (strategy 5's amplifiers/dampeners of the
others), exposure advice (macro's "reduce before the event") and, when it cannot decide, the
reason it abstains. It never sees which world (sim, paper, backtest) it runs in.

What it reads is declared: its input tables (`inputs`, with how old their newest row may be)
and, under given parameters, the bar symbols it trades, needs and reads when present
(`bar_needs`). Before a run, `availability` checks these declarations against what the run's
window holds, so a run says which strategies can decide on its data and why the others cannot.

A SignalStrategy is the other kind: a rule from a symbol's closes to the position wanted
after each close (long or flat), for backtest.vector's whole-history replay. It sees no
snapshot, regime or risk manager; the cycle does not run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from core.calendar import Timeframe
from core.config import StrategiesConfig
from core.signals import Modifier
from core.snapshot import MarketSnapshot
from core.types import Reason, ReasonCode, Regime, RegimeReading, Side, Signal, TradeProposal


@dataclass(frozen=True, slots=True)
class StrategyContext:
    snapshot: MarketSnapshot
    regime: RegimeReading
    now: datetime
    params: Any  # the strategy's frozen parameter model from core.config.StrategiesConfig
    holdings: Mapping[str, float] = field(default_factory=dict)  # the book's signed qty per symbol
    # (symbol, side) of the strategy's own open positions and working entries. A view lasts many
    # cycles: it is entered once, whatever the book's net holding (another strategy's opposite
    # position would otherwise hide the entry and start a ping-pong of entries between the two).
    entered: frozenset[tuple[str, Side]] = frozenset()


@dataclass(frozen=True, slots=True)
class ExposureAdvice:
    """Ask the position manager to scale exposure or widen stops on a symbol until `until`."""

    symbol: str
    exposure_multiplier: float  # 0 = flatten, 0.5 = halve, 1 = unchanged
    stop_widening: float  # 1 = unchanged, 1.5 = stops 50% further away
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class StrategyOutput:
    signals: tuple[Signal, ...] = ()
    proposals: tuple[TradeProposal, ...] = ()
    modifiers: tuple[Modifier, ...] = ()
    exposure_advice: tuple[ExposureAdvice, ...] = ()
    abstention: Reason | None = None

    @classmethod
    def abstain(cls, reason: Reason) -> StrategyOutput:
        return cls(abstention=reason)


DISABLED_IN_CONFIGURATION = Reason(ReasonCode.DISABLED, "in configuration")


@dataclass(frozen=True, slots=True)
class BarNeeds:
    """The bar symbols a strategy reads under its parameters: it can decide when each of
    `required` and at least one of `traded` has bars; `optional` ones it reads when present."""

    traded: tuple[str, ...]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.traded, *self.required, *self.optional)))


class Strategy(Protocol):
    name: ClassVar[str]
    symbols: ClassVar[tuple[str, ...]]  # what it may trade
    regimes: ClassVar[frozenset[Regime]]  # where it may propose; see overrides_regime
    inputs: ClassVar[Mapping[str, timedelta]]  # snapshot tables it needs -> max age of their newest row
    overrides_regime: ClassVar[bool]  # scheduled events override the regime (strategy 2)
    coarsest_timeframe: ClassVar[Timeframe]  # the coarsest bars its rule means anything on

    def bar_needs(self, params: Any) -> BarNeeds:
        """The bar symbols it reads under `params` (its parameter model from core.config)."""
        ...

    def evaluate(self, context: StrategyContext) -> StrategyOutput: ...


class SignalStrategy(Protocol):
    name: ClassVar[str]

    @property
    def warmup(self) -> int:
        """Closes before a bar that its decision looks back over: a replay in chunks hands this many
        of the previous chunk's closes to the next one."""
        ...

    def targets(self, close: NDArray[np.float64], start: int, held: bool) -> NDArray[np.bool_]:
        """Whether to be long after each of close[start:]; close[:start] are closes seen before (at most
        `warmup`), and `held` the target after close[start - 1] (False when there was none)."""
        ...


def too_coarse(strategy: Strategy, timeframe: Timeframe) -> Reason | None:
    """Why the strategy cannot decide on bars of `timeframe` (coarser than its rule means anything on), or None."""
    if timeframe.length <= strategy.coarsest_timeframe.length:
        return None
    detail = f"needs {strategy.coarsest_timeframe} bars or finer; the cycle decides on {timeframe}"
    return Reason(ReasonCode.TIMEFRAME_TOO_COARSE, detail)


def missing_inputs(strategy: Strategy, snapshot: MarketSnapshot) -> Reason | None:
    """Why the strategy cannot decide on this snapshot (bars too coarse, an input missing or stale), or None."""
    coarse = too_coarse(strategy, snapshot.timeframe)
    if coarse is not None:
        return coarse
    for table, max_age in strategy.inputs.items():
        age = snapshot.input_age(table)
        if age is None:
            return Reason(ReasonCode.INPUT_MISSING, table)
        if age > max_age:
            return Reason(ReasonCode.INPUT_STALE, f"{table}: newest row is {age} old (max {max_age})")
    return None


@dataclass(frozen=True, slots=True)
class WindowData:
    """What a run's window holds: rows per table and bars per (symbol, timeframe), counted over
    what its cycles read (point in time does not matter to whether there is anything at all),
    and the timeframe its cycles decide on."""

    table_rows: Mapping[str, int]
    bars: Mapping[tuple[str, str], int]
    timeframe: Timeframe

    def bars_of(self, symbol: str) -> int:
        """The symbol's bars of the cycle's timeframe: what its decisions and its orders read."""
        return self.bars.get((symbol, self.timeframe.value), 0)

    def without_bars(self, symbols: Iterable[str]) -> list[str]:
        return [symbol for symbol in symbols if not self.bars_of(symbol)]


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a strategy can decide on a run's data; if not, the first requirement it fails."""

    strategy: str
    reason: Reason | None  # None: it can run
    note: str = ""  # for one that can: the symbols it would read that have no bars

    @property
    def can_run(self) -> bool:
        return self.reason is None

    @property
    def waits_for_data(self) -> bool:
        """Whether it cannot run for want of rows a feed's next run may load (an input table, a
        symbol's bars), rather than for its configuration or the cycle's timeframe."""
        return self.reason is not None and self.reason.code in (ReasonCode.INPUT_MISSING, ReasonCode.SYMBOL_MISSING)


# One requirement: why the strategy cannot run under its parameters on the window's data, or None.
Requirement = Callable[[Strategy, Any, WindowData], Reason | None]


def _enabled(strategy: Strategy, params: Any, data: WindowData) -> Reason | None:
    return None if params.enabled else DISABLED_IN_CONFIGURATION


def _timeframe_fine_enough(strategy: Strategy, params: Any, data: WindowData) -> Reason | None:
    return too_coarse(strategy, data.timeframe)


def _inputs_have_rows(strategy: Strategy, params: Any, data: WindowData) -> Reason | None:
    empty = [table for table in strategy.inputs if not data.table_rows.get(table)]
    return Reason(ReasonCode.INPUT_MISSING, f"{', '.join(empty)} (no rows in the window)") if empty else None


def _required_symbols_have_bars(strategy: Strategy, params: Any, data: WindowData) -> Reason | None:
    missing = data.without_bars(strategy.bar_needs(params).required)
    return Reason(ReasonCode.SYMBOL_MISSING, f"{', '.join(missing)} (no bars in the window)") if missing else None


def _a_traded_symbol_has_bars(strategy: Strategy, params: Any, data: WindowData) -> Reason | None:
    traded = strategy.bar_needs(params).traded
    if any(data.bars_of(symbol) for symbol in traded):
        return None
    return Reason(ReasonCode.SYMBOL_MISSING, f"none of {', '.join(traded) or 'nothing'} has bars in the window")


# Checked in order; the first that fails is the reason. A new requirement is one more entry.
REQUIREMENTS: tuple[Requirement, ...] = (
    _enabled,
    _timeframe_fine_enough,
    _inputs_have_rows,
    _required_symbols_have_bars,
    _a_traded_symbol_has_bars,
)


def availability(
    strategies: Sequence[Strategy],
    config: StrategiesConfig,
    data: WindowData,
    requirements: Sequence[Requirement] = REQUIREMENTS,
) -> tuple[Availability, ...]:
    """For each strategy, whether it can decide under its parameters on the window's data, and if not, why."""
    found = []
    for strategy in strategies:
        params = getattr(config, strategy.name)
        reason = next((r for check in requirements if (r := check(strategy, params, data)) is not None), None)
        unread = data.without_bars(strategy.bar_needs(params).symbols) if reason is None else []
        note = f"no bars for {', '.join(unread)}" if unread else ""
        found.append(Availability(strategy.name, reason, note))
    return tuple(found)
