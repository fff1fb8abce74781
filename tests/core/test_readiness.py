"""core.readiness: what a cycle reads (history_needs) and what keeps it from trading (cycle_readiness)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from core.calendar import Timeframe, market_calendar
from core.config import EngineConfig, SnapshotConfig
from core.readiness import Readiness, cycle_readiness, history_needs
from core.regime import UNKNOWN_READING
from core.risk import RiskState
from core.types import Reason, ReasonCode, Regime, RegimeReading
from strategies import REGISTRY

SESSIONS = market_calendar().equities
NOW = datetime(2026, 12, 7, 14, 40, tzinfo=UTC)  # Monday, ten minutes into the session
CONFIG = EngineConfig()
TRENDING_UP = RegimeReading(Regime.TRENDING_UP, 1.0, evaluated=True, model_version="rules-v2")
CALM = RiskState(day=NOW.date(), day_start_equity=100_000.0, peak_equity=100_000.0)


def readiness(
    *,
    cycle_no: int = 21,
    interval: timedelta | None = timedelta(minutes=1),
    reading: RegimeReading = TRENDING_UP,
    sessions: int = 301,
    risk: RiskState = CALM,
    abstentions: dict[str, Reason] | None = None,
) -> list[Readiness]:
    return list(
        cycle_readiness(
            CONFIG,
            SESSIONS,
            NOW,
            cycle_no=cycle_no,
            cycle_interval=interval,
            reading=reading,
            reference_sessions=sessions,
            risk=risk,
            strategies=REGISTRY,
            abstentions=abstentions or {},
        )
    )


def test_the_windows_a_cycle_reads_follow_the_configuration_and_cover_the_regime() -> None:
    needs = history_needs(CONFIG)
    assert (needs.bar_sessions, needs.daily_sessions, needs.regime_sessions, needs.regime_minimum) == (6, 300, 252, 22)
    # Daily bars never fewer than the regime's 252-session drawdown reads.
    assert history_needs(EngineConfig(snapshot=SnapshotConfig(daily_bar_sessions=100))).daily_sessions == 252
    assert needs.since(SESSIONS, NOW, Timeframe.MIN_1) == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert needs.sessions_due(SESSIONS, NOW, Timeframe.MIN_1) == 6
    # Today's daily bar comes at the close; Thanksgiving (11-26) has none.
    assert needs.sessions_due(SESSIONS, NOW, Timeframe.DAY_1) == 299
    assert needs.since(SESSIONS, NOW, Timeframe.DAY_1) < datetime(2025, 10, 1, tzinfo=UTC)


def test_observation_says_which_cycle_it_is_and_when_the_first_that_may_trade_comes() -> None:
    [observing] = readiness(cycle_no=12)[:1]
    # Cycles 13..20 still observe; the 21st, nine minutes on, may trade.
    assert str(observing) == "observation: 12 of 20 cycles; ready at 14:49 UTC"
    assert observing.blocking and observing.ready_at == NOW + timedelta(minutes=9)
    assert readiness(cycle_no=1, interval=None)[0].ready_at == NOW + timedelta(minutes=20)  # a minute: the timeframe's
    assert all(item.subject != "observation" for item in readiness(cycle_no=21))


def test_a_regime_short_of_sessions_blocks_only_until_there_is_one() -> None:
    [unknown] = [item for item in readiness(reading=UNKNOWN_READING, sessions=10) if item.subject == "regime"]
    assert unknown.blocking and unknown.reason.code is ReasonCode.HISTORY_SHORT
    assert unknown.reason.detail.startswith("10 of 22 sessions of SPY closes needed for any regime")
    [partial] = [item for item in readiness(sessions=180) if item.subject == "regime"]
    assert not partial.blocking and partial.reason.detail.startswith("read on 180 of 252 sessions of SPY closes")
    assert [item for item in readiness(sessions=252) if item.subject == "regime"] == []


def test_the_kill_switch_and_a_cooldown_block_until_they_end() -> None:
    until = NOW + timedelta(hours=2)
    [cooling] = [item for item in readiness(risk=replace(CALM, cooldown_until=until)) if item.subject == "risk"]
    assert cooling == Readiness("risk", Reason(ReasonCode.COOLDOWN, "until 2026-12-07T16:40:00+00:00"), True, until)
    halted = readiness(risk=replace(CALM, halted_day=date(2026, 12, 7)))
    assert [str(item) for item in halted if item.subject == "risk"] == [
        "risk: kill_switch: until the trading day after 2026-12-07"
    ]


def test_each_strategy_that_cannot_trade_says_why() -> None:
    abstaining = {"macro_event": Reason(ReasonCode.INPUT_MISSING, "economic_events")}
    found = [str(item) for item in readiness(abstentions=abstaining)]
    # In TRENDING_UP: the abstention, then the strategies whose regimes leave it out; macro_event
    # would override the regime, cross_asset and liquidation_cascade trade in it.
    assert found == [
        "macro_event: input_missing: economic_events",
        "precious_metals: regime_not_served: TRENDING_UP is not one it trades in "
        "(CRASH, HIGH_VOL, MEAN_REVERTING, RECOVERY)",
        "ai_disruption: regime_not_served: TRENDING_UP is not one it trades in (HIGH_VOL, RECOVERY, TRENDING_DOWN)",
    ]
