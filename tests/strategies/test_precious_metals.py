"""Precious metals: margin hikes, the Shanghai premium and the gold/silver ratio, on constructed
and simulated markets.

The constructed market trades GLD, SLV and GDX every minute for 30 hours up to NOW. The hourly
GLD/SLV ratio is set hour by hour: by default it alternates 8.8 / 8.9, a z-score near 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from builders_metals_macro_crypto import (
    HOUR,
    SIM_EPOCH,
    context,
    margin_notices,
    metal_premiums,
    minute_bars,
    simulated,
    simulated_snapshot,
    snapshot,
    wiggle,
)

from core.config import PreciousMetalsParams
from core.types import Reason, ReasonCode, Regime, Side
from strategies.base import StrategyOutput
from strategies.precious_metals import PreciousMetalsFlow

START = datetime(2026, 3, 9, tzinfo=UTC)
NOW = START + 30 * HOUR  # 2026-03-10 06:00 UTC
CALM_RATIOS = (8.8, 8.9) * 15
# The Shanghai fixings around NOW: 0.8% at Monday's AM fixing, -1.2% at its PM fixing (a fall
# of 2 points), then a recovery to 0.2% at Tuesday's AM fixing (1.4 points off the low).
MONDAY_AM = START + timedelta(hours=2, minutes=15)
MONDAY_PM = START + timedelta(hours=6, minutes=15)
TUESDAY_AM = START + timedelta(hours=26, minutes=15)
PARAMS = PreciousMetalsParams()
STRATEGY = PreciousMetalsFlow()
METALS = ("GLD", "SLV", "GDX")


def metals(ratios: Sequence[float] = CALM_RATIOS, end: datetime = NOW) -> list[pl.DataFrame]:
    """Minute bars ending at `end` whose GLD/SLV closes hold `ratios[h]` through hour h."""
    minutes = 60 * len(ratios)
    gold = wiggle(400.0, minutes)
    silver = gold / np.repeat(np.asarray(ratios, dtype=np.float64), 60)
    first = end - len(ratios) * HOUR
    return [
        minute_bars("GLD", first, gold),
        minute_bars("SLV", first, silver),
        minute_bars("GDX", first, wiggle(75.0, minutes)),
    ]


def recovery(to: float = 0.2) -> pl.DataFrame:
    return metal_premiums([(MONDAY_AM, 0.8), (MONDAY_PM, -1.2), (TUESDAY_AM, to)])


def evaluate(frames: Sequence[pl.DataFrame], at: datetime = NOW, regime: Regime = Regime.HIGH_VOL) -> StrategyOutput:
    return STRATEGY.evaluate(context(snapshot(at, *frames), PARAMS, regime))


def views(output: StrategyOutput) -> dict[tuple[str, str], float]:
    return {(s.symbol, s.source): s.score for s in output.signals}


def test_class_contract_matches_the_configuration() -> None:
    assert PreciousMetalsFlow.name == "precious_metals"
    assert PreciousMetalsFlow.symbols == PARAMS.symbols == METALS
    assert PreciousMetalsFlow.regimes == {Regime.HIGH_VOL, Regime.CRASH, Regime.RECOVERY, Regime.MEAN_REVERTING}
    assert not PreciousMetalsFlow.overrides_regime
    assert set(PreciousMetalsFlow.inputs) == {"bars"}


def test_calm_metals_are_silent_without_notices_or_premiums() -> None:
    assert evaluate(metals()) == StrategyOutput()


def test_margin_hike_sells_every_metal() -> None:
    noticed = NOW - 10 * HOUR
    output = evaluate([*metals(), margin_notices([("GC", noticed, 15.0), ("SI", noticed, 18.0)])])
    assert views(output) == {(symbol, "margin_hike"): pytest.approx(-0.8) for symbol in METALS}
    assert [p.symbol for p in output.proposals] == list(METALS)
    for proposal in output.proposals:
        assert proposal.side is Side.SELL
        assert proposal.target < proposal.entry < proposal.stop
        assert proposal.reward_risk >= 1.5
        assert proposal.horizon == noticed + 48 * HOUR - NOW
        assert "18.0%" in proposal.reason


def test_a_view_already_entered_is_not_entered_again() -> None:
    noticed = NOW - 10 * HOUR
    frames = [*metals(), margin_notices([("GC", noticed, 15.0), ("SI", noticed, 18.0)])]
    # GLD already sold, SLV bought: the bearish view sells GLD no more, but still sells SLV,
    # whatever the book's net holdings (another strategy's positions are not this view's).
    entered = frozenset({("GLD", Side.SELL), ("SLV", Side.BUY)})
    holdings = {"GLD": 5.0, "SLV": 0.0}
    output = STRATEGY.evaluate(context(snapshot(NOW, *frames), PARAMS, Regime.HIGH_VOL, holdings, entered))
    assert [p.symbol for p in output.proposals] == [s for s in METALS if s != "GLD"]
    assert {s.symbol for s in output.signals} == set(METALS)  # the view itself is still recorded


def test_a_bigger_hike_is_more_confident() -> None:
    def confidence(change_pct: float) -> float:
        output = evaluate([*metals(), margin_notices([("GC", NOW - 10 * HOUR, change_pct)])])
        return output.signals[0].confidence

    assert confidence(25.0) > confidence(10.0) > confidence(2.0)


@pytest.mark.parametrize(
    ("age_hours", "bearish", "proposes"), [(23, True, True), (30, True, False), (50, False, False)]
)
def test_margin_hike_window(age_hours: float, bearish: bool, proposes: bool) -> None:
    output = evaluate([*metals(), margin_notices([("GC", NOW - age_hours * HOUR, 15.0)])])
    assert bool(output.signals) is bearish and all(s.score < 0 for s in output.signals)
    assert bool(output.proposals) is proposes


@pytest.mark.parametrize(
    "notices",
    [
        [("GC", NOW - 20 * HOUR, 15.0), ("GC", NOW - 10 * HOUR, -12.0)],
        [("CL", NOW - 10 * HOUR, 15.0)],
        [("GC", NOW - 10 * HOUR, None)],
    ],
    ids=["cut since the hike", "not a metal", "no change known"],
)
def test_notices_that_are_not_a_hike_in_force(notices: list[tuple[str, datetime, float | None]]) -> None:
    assert evaluate([*metals(), margin_notices(notices)]) == StrategyOutput()


def test_a_silver_hike_alone_is_bearish_for_all_metals() -> None:
    output = evaluate([*metals(), margin_notices([("SI", NOW - 5 * HOUR, 12.0)])])
    assert {p.symbol: p.side for p in output.proposals} == dict.fromkeys(METALS, Side.SELL)


def test_premium_recovery_after_a_fall_buys_every_metal() -> None:
    output = evaluate([*metals(), recovery()])
    assert views(output) == {(symbol, "premium_recovery"): pytest.approx(0.6) for symbol in METALS}
    assert {p.symbol: p.side for p in output.proposals} == dict.fromkeys(METALS, Side.BUY)
    for proposal in output.proposals:
        assert proposal.stop < proposal.entry < proposal.target
        assert proposal.reward_risk >= 1.5
    assert {s.ts_event for s in output.signals} == {TUESDAY_AM}


def test_a_stronger_premium_recovery_is_more_confident() -> None:
    weak, strong = (evaluate([*metals(), recovery(to)]).signals[0].confidence for to in (-0.6, 0.4))
    assert strong > weak


@pytest.mark.parametrize(
    "fixings",
    [
        [(MONDAY_AM, 0.8), (MONDAY_PM, 0.7), (TUESDAY_AM, 0.9)],
        [(MONDAY_AM, 0.8), (MONDAY_PM, -1.2), (TUESDAY_AM, -0.9)],
    ],
    ids=["no fall", "recovery too small"],
)
def test_premium_moves_that_are_not_a_recovery(fixings: list[tuple[datetime, float]]) -> None:
    assert evaluate([*metals(), metal_premiums(fixings)]) == StrategyOutput()


@pytest.mark.parametrize(("hours_after", "holds"), [(20, True), (24, False)])
def test_a_premium_recovery_lasts_a_day(hours_after: int, holds: bool) -> None:
    # The recovery showed at Tuesday's 02:15 fixing, NOW is 06:00: a day later is 02:15 + 24 h.
    later = NOW + hours_after * HOUR
    output = evaluate([*metals(end=later), recovery()], at=later)
    assert bool(output.signals) is holds


def test_a_margin_hike_overrides_the_premium_long() -> None:
    output = evaluate([*metals(), recovery(), margin_notices([("GC", NOW - 6 * HOUR, 15.0)])])
    assert {source for _, source in views(output)} == {"margin_hike"}
    assert {p.side for p in output.proposals} == {Side.SELL}


def hand_checked_ratios(last: float) -> tuple[float, ...]:
    return (8.0, 8.2) * 9 + (8.0, last)


def test_ratio_zscore_arithmetic_checked_by_hand() -> None:
    # Ten hours at 8.0, nine at 8.2, then 9.0: mean 162.8 / 20 = 8.14; squared deviations
    # 10 x 0.14^2 + 9 x 0.06^2 + 0.86^2 = 0.968; sd = sqrt(0.968 / 19) = 0.22571; z = 0.86 / sd = 3.810.
    z = 0.86 / math.sqrt(0.968 / 19)
    assert z == pytest.approx(3.810, abs=1e-3)
    output = evaluate(metals(hand_checked_ratios(9.0)))
    assert views(output) == {("GLD", "gold_silver_ratio"): -0.5, ("SLV", "gold_silver_ratio"): 0.5}
    (proposal,) = output.proposals
    assert (proposal.symbol, proposal.side) == ("SLV", Side.BUY)
    assert proposal.stop < proposal.entry < proposal.target and proposal.reward_risk >= 1.5
    assert "+3.81" in proposal.reason
    expected_confidence = 0.3 + 0.6 * (1 - math.exp(-(z / PARAMS.ratio_z_threshold - 1)))
    assert [s.confidence for s in output.signals] == pytest.approx([expected_confidence] * 2)
    assert {s.half_life for s in output.signals} == {2 * HOUR}  # hourly sampling: the history is short


def test_a_low_ratio_sells_silver() -> None:
    output = evaluate(metals(hand_checked_ratios(7.2)))
    assert views(output) == {("GLD", "gold_silver_ratio"): 0.5, ("SLV", "gold_silver_ratio"): -0.5}
    assert [(p.symbol, p.side) for p in output.proposals] == [("SLV", Side.SELL)]


def test_the_ratio_uses_daily_bars_when_they_cover_enough_days() -> None:
    days = 25
    first = NOW - days * timedelta(days=1)
    ratios = np.array([8.0, 8.2] * 12 + [9.0])
    daily = [
        minute_bars(symbol, first, closes).with_columns(
            pl.lit("1Day").alias("timeframe"),
            (pl.lit(first) + pl.duration(days=pl.int_range(0, days))).alias("ts_event"),
            (pl.lit(first) + pl.duration(days=pl.int_range(1, days + 1))).alias("ts_ingested"),
        )
        for symbol, closes in (("GLD", np.full(days, 400.0)), ("SLV", 400.0 / ratios))
    ]
    output = evaluate([*daily, *metals()])
    assert {(s.symbol, s.score, s.half_life) for s in output.signals} == {
        ("GLD", -0.5, timedelta(days=2)),
        ("SLV", 0.5, timedelta(days=2)),
    }


def test_the_premium_long_takes_precedence_over_the_ratio_on_silver() -> None:
    output = evaluate([*metals(hand_checked_ratios(7.2)), recovery()])
    assert views(output)[("SLV", "gold_silver_ratio")] < 0 < views(output)[("SLV", "premium_recovery")]
    (silver,) = [p for p in output.proposals if p.symbol == "SLV"]
    (premium,) = [s for s in output.signals if s.symbol == "SLV" and s.source == "premium_recovery"]
    assert silver.side is Side.BUY and silver.signal_ids == (premium.signal_id,)


def test_a_margin_hike_silences_the_ratio() -> None:
    output = evaluate([*metals(hand_checked_ratios(9.0)), margin_notices([("SI", NOW - 2 * HOUR, 20.0)])])
    assert {source for _, source in views(output)} == {"margin_hike"}
    assert [p.side for p in output.proposals if p.symbol == "SLV"] == [Side.SELL]


@pytest.mark.parametrize("regime", [Regime.TRENDING_UP, Regime.TRENDING_DOWN])
def test_outside_its_regimes_it_keeps_the_views_but_proposes_nothing(regime: Regime) -> None:
    output = evaluate([*metals(), margin_notices([("GC", NOW - HOUR, 15.0)])], regime=regime)
    assert len(output.signals) == 3
    assert output.proposals == ()


def test_a_stale_price_gets_a_view_but_no_trade() -> None:
    output = evaluate([*metals(), margin_notices([("GC", NOW - 10 * HOUR, 15.0)])], at=NOW + 2 * HOUR)
    assert len(output.signals) == 3
    assert output.proposals == ()


def test_abstains_without_bars() -> None:
    output = evaluate([margin_notices([("GC", NOW - HOUR, 15.0)]), recovery()])
    assert output.abstention == Reason(ReasonCode.INPUT_MISSING, "bars")


def test_abstains_when_the_bars_have_stopped() -> None:
    output = evaluate(metals(), at=NOW + timedelta(days=5))
    assert output.abstention is not None and output.abstention.code is ReasonCode.INPUT_STALE
    assert output.abstention.detail.startswith("bars: newest row is")


def test_sells_metals_the_session_after_a_simulated_margin_hike() -> None:
    frames = simulated(days=10)
    hikes = frames["margin_notices"].filter(
        (pl.col("product") == "GC") & (pl.col("change_pct") > 0) & (pl.col("ts_event") > SIM_EPOCH + timedelta(days=3))
    )
    noticed: datetime = hikes["ts_event"][0]
    # CME posts after the close (16:15-17:45 New York): 19 hours later is mid-session.
    at = noticed + 19 * HOUR
    output = STRATEGY.evaluate(context(simulated_snapshot(10, at), PARAMS, Regime.HIGH_VOL))
    assert {(s.symbol, s.source) for s in output.signals} == {(symbol, "margin_hike") for symbol in METALS}
    assert {p.symbol: p.side for p in output.proposals} == dict.fromkeys(METALS, Side.SELL)
