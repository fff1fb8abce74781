"""Macro event scalper: pre-release advice and the first candle's trade, on constructed and simulated markets.

The constructed market: an FOMC statement at 18:00 UTC on a session from 13:30 to 20:00 UTC.
In its first 15 minutes SPY rises 0.8%, TLT falls 0.6%, GLD does not move beyond its noise,
and SLV rises 1% only to fall back through the candle's low within ten minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from builders_metals_macro_crypto import (
    MINUTE,
    context,
    economic_events,
    minute_bars,
    ramp,
    simulated,
    simulated_snapshot,
    snapshot,
    wiggle,
)

from core.config import MacroEventParams
from core.types import Reason, ReasonCode, Regime, Side
from strategies.base import StrategyOutput
from strategies.macro_event import MacroEventScalper

DAY = datetime(2026, 3, 11, tzinfo=UTC)
OPEN = DAY + timedelta(hours=13, minutes=30)
EVENT = DAY + timedelta(hours=18)
CANDLE_CLOSED = EVENT + timedelta(minutes=15)
PARAMS = MacroEventParams()
STRATEGY = MacroEventScalper()
SYMBOLS = ("SPY", "TLT", "GLD", "SLV")


def path(level: float, candle: float, after: tuple[tuple[float, int], ...] = ((0.0, 105),)) -> np.ndarray:
    """Noise until the event, a candle moving `candle` (fraction) over 15 minutes, then legs."""
    legs = [(level, level * (1 + candle), 15)]
    for move, minutes in after:
        start = legs[-1][1]
        legs.append((start, start * (1 + move), minutes))
    return np.concatenate([wiggle(level, 270), ramp(*legs)])


def market(spy_move: float = 0.008, event_type: str = "FOMC", **event_options: Any) -> list[pl.DataFrame]:
    paths = {
        "SPY": path(600.0, spy_move, ((0.002, 105),)),
        "TLT": path(88.0, -0.006),
        "GLD": wiggle(400.0, 390),
        "SLV": path(45.0, 0.01, ((-0.02, 10), (0.0, 95))),
    }
    bars = [minute_bars(symbol, OPEN, closes) for symbol, closes in paths.items()]
    return [*bars, economic_events([(event_type, EVENT)], **event_options)]


def evaluate(at: datetime, frames: list[pl.DataFrame], regime: Regime = Regime.TRENDING_UP) -> StrategyOutput:
    return STRATEGY.evaluate(context(snapshot(at, *frames), PARAMS, regime))


def candle_extreme(frames: list[pl.DataFrame], symbol: str, column: str) -> float:
    """The lowest low or highest high of the symbol's first 15 bars after the event."""
    bars = pl.concat(frames[:4]).filter(
        (pl.col("symbol") == symbol) & pl.col("ts_event").is_between(EVENT, EVENT + 14 * MINUTE)
    )
    values = bars.get_column(column).to_numpy()
    return float(values.min() if column == "low" else values.max())


def test_class_contract_matches_the_configuration() -> None:
    assert MacroEventScalper.name == "macro_event"
    assert MacroEventScalper.symbols == PARAMS.symbols == SYMBOLS
    assert MacroEventScalper.overrides_regime
    assert MacroEventScalper.regimes == frozenset(Regime)


def test_advises_cutting_exposure_hours_before_the_release() -> None:
    output = evaluate(EVENT - timedelta(hours=3), market())
    assert [a.symbol for a in output.exposure_advice] == list(SYMBOLS)
    for advice in output.exposure_advice:
        assert (advice.exposure_multiplier, advice.stop_widening) == (0.5, 1.5)
        assert advice.until == CANDLE_CLOSED
        assert "FOMC" in advice.reason
    assert output.signals == output.proposals == ()
    assert output.abstention is None


@pytest.mark.parametrize("before", [timedelta(hours=4, minutes=15), timedelta(minutes=30), timedelta(0)])
def test_no_advice_outside_the_preparation_window(before: timedelta) -> None:
    assert evaluate(EVENT - before, market()).exposure_advice == ()


def test_nothing_until_the_first_candle_has_closed() -> None:
    assert evaluate(EVENT + 14 * MINUTE, market()) == StrategyOutput()


def test_a_bar_published_before_it_closed_is_not_used() -> None:
    frames = market()
    forming = (
        frames[0]
        .filter(pl.col("ts_event") == EVENT + 14 * MINUTE)
        .with_columns(pl.col("ts_event").alias("ts_ingested"))
    )
    assert evaluate(EVENT + 14 * MINUTE + timedelta(seconds=30), [*frames, forming]) == StrategyOutput()


def test_enters_at_the_last_closed_bar_not_a_forming_one() -> None:
    frames = market()
    at = CANDLE_CLOSED + 5 * MINUTE
    forming = minute_bars("SPY", at, [700.0], ingested_after=timedelta(0))
    (proposal,) = [p for p in evaluate(at + timedelta(seconds=30), [*frames, forming]).proposals if p.symbol == "SPY"]
    last_closed = frames[0].filter(pl.col("ts_event") == at - MINUTE)["close"].item()
    assert proposal.entry == last_closed


def test_trades_in_the_direction_of_the_first_candle() -> None:
    frames = market()
    output = evaluate(CANDLE_CLOSED, frames)
    assert {s.symbol: s.score > 0 for s in output.signals} == {"SPY": True, "TLT": False, "SLV": True}
    by_symbol = {p.symbol: p for p in output.proposals}
    assert set(by_symbol) == {"SPY", "TLT", "SLV"}

    spy, tlt = by_symbol["SPY"], by_symbol["TLT"]
    assert spy.side is Side.BUY
    assert spy.stop < candle_extreme(frames, "SPY", "low") < spy.entry < spy.target
    assert tlt.side is Side.SELL
    assert tlt.target < tlt.entry < candle_extreme(frames, "TLT", "high") < tlt.stop
    for proposal in output.proposals:
        assert proposal.reward_risk >= 1.5
        assert proposal.horizon == EVENT + timedelta(minutes=PARAMS.trade_window_minutes) - CANDLE_CLOSED
        (signal,) = [s for s in output.signals if s.symbol == proposal.symbol]
        assert proposal.signal_ids == (signal.signal_id,)
        assert signal.ts_event == CANDLE_CLOSED


def test_a_candle_already_entered_is_not_entered_again() -> None:
    # SPY bought (the candle's direction) and TLT bought (against it): SPY keeps its view but gets
    # no second trade, TLT's short is still proposed, as is SLV's long, whose book holding (another
    # strategy's short) changes nothing.
    entered = frozenset({("SPY", Side.BUY), ("TLT", Side.BUY)})
    market_then = snapshot(CANDLE_CLOSED, *market())
    output = STRATEGY.evaluate(context(market_then, PARAMS, Regime.TRENDING_UP, {"SLV": -50.0}, entered))
    assert {s.symbol for s in output.signals} == {"SPY", "TLT", "SLV"}
    assert {p.symbol: p.side for p in output.proposals} == {"TLT": Side.SELL, "SLV": Side.BUY}


def test_a_bigger_candle_gives_more_confidence() -> None:
    def spy_confidence(move: float) -> float:
        (signal,) = [s for s in evaluate(CANDLE_CLOSED, market(spy_move=move)).signals if s.symbol == "SPY"]
        return signal.confidence

    assert spy_confidence(0.008) > spy_confidence(0.004) > 0


def test_a_price_back_through_the_candle_keeps_the_view_but_not_the_trade() -> None:
    output = evaluate(EVENT + timedelta(minutes=30), market())
    assert "SLV" in {s.symbol for s in output.signals}
    assert "SLV" not in {p.symbol for p in output.proposals}


def test_trades_only_within_the_trade_window() -> None:
    window_end = EVENT + timedelta(minutes=PARAMS.trade_window_minutes)
    assert {p.symbol for p in evaluate(window_end - MINUTE, market()).proposals} == {"SPY", "TLT"}
    assert evaluate(window_end, market()) == StrategyOutput()


@pytest.mark.parametrize("regime", list(Regime))
def test_a_scheduled_release_overrides_the_regime(regime: Regime) -> None:
    assert {p.symbol for p in evaluate(CANDLE_CLOSED, market(), regime).proposals} == {"SPY", "TLT", "SLV"}


@pytest.mark.parametrize(
    "options",
    [{"event_type": "GDP"}, {"importance": 2}, {"all_day": True}],
    ids=["unlisted type", "not market-moving", "time unknown"],
)
def test_ignores_releases_that_do_not_qualify(options: dict[str, Any]) -> None:
    frames = market(**options)
    assert evaluate(EVENT - timedelta(hours=2), frames) == StrategyOutput()
    assert evaluate(CANDLE_CLOSED, frames) == StrategyOutput()


def test_a_quiet_reaction_is_no_view() -> None:
    frames = [minute_bars(symbol, OPEN, wiggle(100.0, 390)) for symbol in SYMBOLS]
    frames.append(economic_events([("CPI", EVENT)]))
    assert evaluate(CANDLE_CLOSED, frames) == StrategyOutput()


def test_a_release_before_the_open_is_traded_on_the_opening_candle() -> None:
    previous_close = OPEN - timedelta(hours=17, minutes=30)  # 20:00 the day before, after 60 quiet bars
    release = OPEN - timedelta(hours=1)  # 08:30 New York time
    bars = pl.concat(
        [
            minute_bars("SPY", previous_close - timedelta(hours=1), wiggle(600.0, 60)),
            minute_bars("SPY", OPEN, ramp((600.0, 594.0, 15), (594.0, 593.0, 30))),
        ]
    )
    frames = [bars, economic_events([("NFP", release)])]
    assert evaluate(OPEN + 14 * MINUTE, frames).proposals == ()
    (proposal,) = evaluate(OPEN + 15 * MINUTE, frames).proposals
    assert (proposal.symbol, proposal.side) == ("SPY", Side.SELL)
    assert proposal.target < proposal.entry < proposal.stop


def test_abstains_without_a_calendar() -> None:
    output = evaluate(CANDLE_CLOSED, market()[:4])
    assert output.abstention == Reason(ReasonCode.INPUT_MISSING, "economic_events")


def test_abstains_when_the_bars_have_stopped() -> None:
    output = evaluate(EVENT + timedelta(days=5), market())
    assert output.abstention is not None and output.abstention.code is ReasonCode.INPUT_STALE
    assert output.abstention.detail.startswith("bars: newest row is")


def test_trades_the_first_candle_of_a_simulated_release() -> None:
    frames = simulated(days=4)
    release: datetime = frames["economic_events"].filter(pl.col("ts_event") >= datetime(2026, 3, 5, tzinfo=UTC))[
        "ts_event"
    ][0]
    spy = frames["bars"].filter((pl.col("symbol") == "SPY") & (pl.col("ts_event") >= release)).sort("ts_event")
    opened: datetime = spy["ts_event"][0]
    first = spy.filter(pl.col("ts_event") < opened + timedelta(minutes=15))
    expected = Side.BUY if first["close"][-1] > first["open"][0] else Side.SELL

    before = STRATEGY.evaluate(context(simulated_snapshot(4, release - timedelta(hours=2)), PARAMS))
    assert {a.symbol for a in before.exposure_advice} == set(SYMBOLS)
    output = STRATEGY.evaluate(context(simulated_snapshot(4, opened + timedelta(minutes=15)), PARAMS))
    (proposal,) = [p for p in output.proposals if p.symbol == "SPY"]
    assert proposal.side is expected
    assert proposal.reward_risk >= 1.5
