"""What a run needs before it can trade, and why a cycle cannot: one place for both.

HISTORY. A cycle reads windows counted in exchange sessions, never calendar days: bars of its
own timeframe over `engine.snapshot.bar_sessions`, daily bars over
`engine.snapshot.daily_bar_sessions` and at least the regime's lookback (core.features: the
252-session drawdown). The strategies read within those windows. `history_needs` turns the
engine configuration into these windows; the snapshot's read (hydra.decide.decision_windows)
and the first fetch of a symbol never stored (hydra.sources) both take them from here, so a
change of a window changes both.

READINESS. `cycle_readiness` says what keeps a cycle from trading, each with a stable reason
code (core.types.ReasonCode) and, where it is a matter of time, when it will be ready:

    observation     the first `engine.regime.observation_cycles` cycles only observe
    regime          too few sessions of the reference's closes for any regime (only strategies
                    that override the regime may trade), or a regime read on fewer sessions than
                    its lookback (not blocking: it trades on what there is)
    risk            the kill switch or a cooldown
    <strategy>      its abstention, or a regime it does not trade in

Pure: time, the calendar and the cycle's outcome are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from core.calendar import Sessions
from core.config import EngineConfig
from core.features import SESSION_WINDOWS, SessionWindows
from core.regime import UNKNOWN_VERSION
from core.risk import RiskState
from core.strategy import Strategy
from core.types import Reason, ReasonCode, RegimeReading, Timeframe


@dataclass(frozen=True, slots=True)
class HistoryNeeds:
    """The sessions of history a cycle reads, per timeframe of bars."""

    timeframe: Timeframe  # the bars cycles decide on
    bar_sessions: int  # of bars of that timeframe (and of any other intraday one)
    daily_sessions: int  # of daily bars
    regime_sessions: int  # the reference's closes a full regime reading reads
    regime_minimum: int  # the reference's closes before there is any regime

    def sessions_of(self, timeframe: Timeframe) -> int:
        return self.bar_sessions if timeframe.intraday else self.daily_sessions

    def since(self, sessions: Sessions, now: datetime, timeframe: Timeframe) -> datetime:
        """Where the window of `timeframe` bars that a cycle at `now` reads begins."""
        opens = sessions.start_of_sessions_back(now, self.sessions_of(timeframe))
        if timeframe.intraday:
            return opens
        # Daily bars are stamped before their session opens (midnight New York or UTC): from its date on.
        return datetime.combine(opens.date(), time(0), tzinfo=UTC)

    def sessions_due(self, sessions: Sessions, now: datetime, timeframe: Timeframe) -> int:
        """How many sessions of that window can have bars by `now`: each one begun (intraday bars)
        or closed (daily bars: a session's comes at its close)."""
        first = sessions.first_on_or_after(self.since(sessions, now, timeframe).date())
        last = sessions.closed_by(now) + (1 if timeframe.intraday and sessions.is_open(now) else 0)
        return max(last - first, 0)


def history_needs(config: EngineConfig, windows: SessionWindows = SESSION_WINDOWS) -> HistoryNeeds:
    snapshot = config.snapshot
    return HistoryNeeds(
        timeframe=config.timeframe,
        bar_sessions=snapshot.bar_sessions,
        daily_sessions=max(snapshot.daily_bar_sessions, windows.lookback),
        regime_sessions=windows.lookback,
        regime_minimum=windows.sessions_needed,
    )


@dataclass(frozen=True, slots=True)
class Readiness:
    """One thing that keeps a cycle, or one strategy in it, from trading (`blocking`), or has it
    trade on less than it should (not blocking)."""

    subject: str  # 'observation', 'regime', 'risk' or a strategy's name
    reason: Reason
    blocking: bool
    ready_at: datetime | None = None  # when it will be ready by itself, if that is a matter of time

    def __str__(self) -> str:
        """'observation: 12 of 20 cycles; ready at 14:52 UTC', 'liquidation_cascade: input_missing: funding_rates'."""
        if self.subject == self.reason.code.value:
            return f"{self.subject}: {self.reason.detail}"
        return f"{self.subject}: {self.reason}"


def cycle_readiness(
    config: EngineConfig,
    calendar: Sessions,
    now: datetime,
    *,
    cycle_no: int,
    cycle_interval: timedelta | None,
    reading: RegimeReading,
    reference_sessions: int,
    risk: RiskState,
    strategies: Sequence[Strategy],
    abstentions: Mapping[str, Reason],
) -> tuple[Readiness, ...]:
    """What keeps the cycle at `now` from trading, most general first (see the module docstring).

    `cycle_interval` is the time between the run's cycles; before a second cycle has shown it, the
    cycle's timeframe stands in (a minute for the live loop)."""
    needs = history_needs(config)
    found: list[Readiness] = []
    observed = config.regime.observation_cycles
    if cycle_no <= observed:
        interval = cycle_interval or (config.timeframe.length if config.timeframe.intraday else timedelta(days=1))
        ready_at = now + (observed - cycle_no + 1) * interval
        detail = f"{cycle_no} of {observed} cycles; ready at {_moment(ready_at, now)}"
        found.append(Readiness("observation", Reason(ReasonCode.OBSERVATION, detail), True, ready_at))
    reference = config.regime.reference
    regime_known = reading.model_version != UNKNOWN_VERSION
    if reference_sessions < needs.regime_sessions:
        wanted = needs.regime_sessions if regime_known else needs.regime_minimum
        by_itself = calendar.close_of_sessions_ahead(now, wanted - reference_sessions)
        held = (
            f"read on {reference_sessions} of {wanted} sessions of {reference} closes; complete"
            if regime_known
            else f"{reference_sessions} of {wanted} sessions of {reference} closes needed for any regime; ready"
        )
        detail = f"{held} after a backfill of its daily bars, or by itself at the close of {by_itself:%Y-%m-%d}"
        found.append(Readiness("regime", Reason(ReasonCode.HISTORY_SHORT, detail), not regime_known, by_itself))
    halts = risk.halts()
    if halts:  # the kill switch outlasts any cooldown: only the first halt says when trading resumes
        resumes_at = risk.cooldown_until if halts[0].code is ReasonCode.COOLDOWN else None
        found.append(Readiness("risk", halts[0], True, resumes_at))
    for strategy in strategies:
        abstention = abstentions.get(strategy.name)
        if abstention is not None:
            found.append(Readiness(strategy.name, abstention, True))
        elif regime_known and not strategy.overrides_regime and reading.regime not in strategy.regimes:
            served = ", ".join(sorted(regime.value for regime in strategy.regimes))
            detail = f"{reading.regime.value} is not one it trades in ({served})"
            found.append(Readiness(strategy.name, Reason(ReasonCode.REGIME_NOT_SERVED, detail), True))
    return tuple(found)


def _moment(moment: datetime, now: datetime) -> str:
    """A time of today as HH:MM UTC; another day's with its date."""
    moment = moment.astimezone(UTC)
    return f"{moment:%H:%M} UTC" if moment.date() == now.astimezone(UTC).date() else f"{moment:%Y-%m-%d %H:%M} UTC"
