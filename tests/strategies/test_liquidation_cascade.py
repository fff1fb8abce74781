"""Liquidation cascade: funding, open-interest flush and bounce on constructed and simulated markets.

The constructed market: BTC/USD at 80,000 from 06:00; a funding print at 08:00; from 12:00 to
12:30 open interest falls 15% (100k -> 85k) while the price falls 5% to 76,000; then open
interest holds and the price climbs 10 a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from builders_metals_macro_crypto import (
    MINUTE,
    context,
    funding_rates,
    minute_bars,
    open_interest,
    ramp,
    simulated,
    simulated_snapshot,
    snapshot,
)

from core.config import LiquidationCascadeParams
from core.types import Reason, ReasonCode, Regime, Side
from strategies.base import StrategyOutput
from strategies.liquidation_cascade import LiquidationCascade

DAY = datetime(2026, 3, 10, tzinfo=UTC)
START = DAY + timedelta(hours=6)
T_FUNDING = DAY + timedelta(hours=10)
T_CASCADE = DAY + timedelta(hours=12, minutes=20)
T_BOUNCE = DAY + timedelta(hours=12, minutes=50)
T_SPENT = DAY + timedelta(hours=15)
BOTH_COINS = LiquidationCascadeParams()
PARAMS = BOTH_COINS.model_copy(update={"symbols": ("BTC/USD",)})  # the constructed market is BTC's
STRATEGY = LiquidationCascade()


def market(
    *,
    funding_rate: float = 0.0010,
    later_prints: tuple[tuple[datetime, float], ...] = (),
    flush: bool = True,
    price_falls: bool = True,
    venue_symbol: str = "BTCUSDT",
    open_interest_until: datetime | None = None,
) -> list[pl.DataFrame]:
    flush_end = 76_000.0 if price_falls else 84_000.0
    closes = ramp((80_000, 80_000, 360), (80_000, flush_end, 30), (flush_end, flush_end + 1_800, 180))
    settled = 85_000 if flush else 100_000
    oi_values = ramp((100_000, 100_000, 72), (100_000, settled, 6), (settled, settled, 36))
    readings = open_interest(venue_symbol, START, oi_values)
    if open_interest_until is not None:
        readings = readings.filter(pl.col("ts_event") < open_interest_until)
    prints = ((DAY, 0.0001), (DAY + timedelta(hours=8), funding_rate), *later_prints)
    return [minute_bars("BTC/USD", START, closes), funding_rates(venue_symbol, prints), readings]


def evaluate(
    at: datetime,
    frames: list[pl.DataFrame],
    *,
    regime: Regime = Regime.HIGH_VOL,
    holdings: dict[str, float] | None = None,
    params: LiquidationCascadeParams = PARAMS,
) -> StrategyOutput:
    return STRATEGY.evaluate(context(snapshot(at, *frames), params, regime, holdings))


def only_signal(output: StrategyOutput, symbol: str = "BTC/USD") -> tuple[str, float, float]:
    (signal,) = [s for s in output.signals if s.symbol == symbol]
    return signal.source, signal.score, signal.confidence


def test_class_contract_matches_the_configuration() -> None:
    assert LiquidationCascade.name == "liquidation_cascade"
    assert set(BOTH_COINS.symbols) <= set(LiquidationCascade.symbols) == {"BTC/USD", "ETH/USD"}
    assert LiquidationCascade.regimes == {Regime.HIGH_VOL, Regime.CRASH, Regime.TRENDING_UP, Regime.TRENDING_DOWN}
    assert not LiquidationCascade.overrides_regime
    assert LiquidationCascade.inputs["funding_rates"] == timedelta(hours=9)


def test_funding_above_threshold_is_bearish_with_confidence_growing_with_the_rate() -> None:
    mild = evaluate(T_FUNDING, market(funding_rate=0.0008))
    extreme = evaluate(T_FUNDING, market(funding_rate=0.0015))
    for output in (mild, extreme):
        source, score, _ = only_signal(output)
        assert (source, output.abstention) == ("funding", None)
        assert score < 0
        assert output.proposals == ()  # nothing held, and crypto cannot be shorted
    assert only_signal(extreme)[2] > only_signal(mild)[2]


def test_funding_at_or_below_threshold_is_no_view() -> None:
    output = evaluate(T_FUNDING, market(funding_rate=PARAMS.funding_threshold))
    assert output == StrategyOutput()


def test_a_held_coin_is_exited_on_the_bearish_funding_view() -> None:
    output = evaluate(T_FUNDING, market(), holdings={"BTC/USD": 0.05})
    (proposal,) = output.proposals
    (signal,) = output.signals
    assert (proposal.symbol, proposal.side) == ("BTC/USD", Side.SELL)
    assert proposal.target < proposal.entry < proposal.stop
    assert proposal.reward_risk >= 1.5
    assert "reduce-only" in proposal.reason and "0.05" in proposal.reason
    assert proposal.signal_ids == (signal.signal_id,)
    assert proposal.confidence == signal.confidence


def test_cascade_in_progress_is_the_strongest_bearish_view() -> None:
    funding_score = only_signal(evaluate(T_FUNDING, market()))[1]
    output = evaluate(T_CASCADE, market(), holdings={"BTC/USD": 0.05})
    source, score, _ = only_signal(output)
    assert source == "cascade"
    assert score < funding_score < 0
    (proposal,) = output.proposals
    assert proposal.side is Side.SELL and proposal.target < proposal.entry < proposal.stop
    assert proposal.horizon <= timedelta(hours=1)


def test_open_interest_falling_while_the_price_rises_is_no_cascade() -> None:
    output = evaluate(T_CASCADE, market(price_falls=False))
    assert only_signal(output)[0] == "funding"


@pytest.mark.parametrize("at", [T_FUNDING, T_CASCADE])
@pytest.mark.parametrize("holdings", [{}, {"BTC/USD": 0.0}, {"BTC/USD": -0.1}, {"ETH/USD": 1.0}])
def test_never_sells_a_coin_that_is_not_held(at: datetime, holdings: dict[str, float]) -> None:
    output = evaluate(at, market(), holdings=holdings)
    assert output.signals and output.signals[0].score < 0
    assert [p for p in output.proposals if p.side is Side.SELL] == []


def test_bounce_after_the_flush_buys_with_the_stop_below_the_flush_low() -> None:
    frames = market()
    output = evaluate(T_BOUNCE, frames)
    source, score, _ = only_signal(output)
    assert (source, score > 0) == ("bounce", True)
    (proposal,) = output.proposals
    flush_low = frames[0].filter(pl.col("ts_event") < T_BOUNCE - MINUTE)["low"].min()
    assert isinstance(flush_low, float)
    assert proposal.side is Side.BUY
    assert proposal.stop < flush_low < proposal.entry < proposal.target
    assert proposal.reward_risk >= 1.5
    assert "$200-$2,000" in proposal.reason


@pytest.mark.parametrize(
    ("at", "view", "side"),
    [(T_BOUNCE, "bounce", Side.BUY), (T_CASCADE, "cascade", Side.SELL), (T_FUNDING, "funding", Side.SELL)],
)
@pytest.mark.parametrize("already", [True, False])
def test_a_view_is_entered_once(at: datetime, view: str, side: Side, already: bool) -> None:
    entered = frozenset({("BTC/USD", side)} if already else {("BTC/USD", side.opposite), ("ETH/USD", side)})
    # Still holding coin after a first reduce-only sale: the bearish view does not sell again.
    output = STRATEGY.evaluate(context(snapshot(at, *market()), PARAMS, Regime.HIGH_VOL, {"BTC/USD": 0.05}, entered))
    assert only_signal(output)[0] == view  # the view itself is still recorded
    assert [p.side for p in output.proposals] == ([] if already else [side])


def test_the_flush_is_over_only_once_open_interest_has_held_for_the_stable_period() -> None:
    # Open interest stopped at 85k at 12:30; at 12:40 it is still 2.9% below its 12:25 reading.
    assert only_signal(evaluate(DAY + timedelta(hours=12, minutes=40), market()))[0] == "cascade"
    assert only_signal(evaluate(T_BOUNCE, market()))[0] == "bounce"


def test_funding_still_high_after_the_flush_vetoes_the_bounce() -> None:
    rebuilt = ((DAY + timedelta(hours=12, minutes=40), 0.0009),)
    output = evaluate(T_BOUNCE, market(later_prints=rebuilt))
    source, score, _ = only_signal(output)
    assert (source, score < 0) == ("funding", True)
    assert output.proposals == ()


def test_funding_normalised_after_the_flush_keeps_the_bounce() -> None:
    normal = ((DAY + timedelta(hours=12, minutes=40), 0.0001),)
    output = evaluate(T_BOUNCE, market(later_prints=normal))
    assert only_signal(output)[0] == "bounce"
    assert [p.side for p in output.proposals] == [Side.BUY]


def test_the_flush_spends_the_funding_view_once_the_bounce_window_is_over() -> None:
    assert evaluate(T_SPENT, market()) == StrategyOutput()


def test_calm_market_is_silent_and_not_an_abstention() -> None:
    for at in (T_FUNDING, T_CASCADE, T_BOUNCE):
        assert evaluate(at, market(funding_rate=0.0001, flush=False), holdings={"BTC/USD": 1.0}) == StrategyOutput()


@pytest.mark.parametrize("regime", [Regime.MEAN_REVERTING, Regime.RECOVERY])
def test_outside_its_regimes_it_keeps_the_view_but_proposes_nothing(regime: Regime) -> None:
    for at in (T_CASCADE, T_BOUNCE):
        output = evaluate(at, market(), regime=regime, holdings={"BTC/USD": 0.05})
        assert output.signals
        assert output.proposals == ()


def test_eth_is_read_from_ethusdt() -> None:
    frames = market(venue_symbol="ETHUSDT")
    frames[0] = frames[0].with_columns(pl.lit("ETH/USD").alias("symbol"))
    output = evaluate(T_CASCADE, frames, params=BOTH_COINS)
    assert [(s.symbol, s.source) for s in output.signals] == [("ETH/USD", "cascade")]


def test_a_coin_without_its_own_funding_abstains_with_the_reason_while_the_other_decides() -> None:
    output = evaluate(T_FUNDING, market(), params=BOTH_COINS)
    assert only_signal(output)[0] == "funding"
    assert output.abstention == Reason(ReasonCode.SYMBOL_MISSING, "ETH/USD: no ETHUSDT funding")


def test_a_coin_whose_funding_stopped_abstains_as_stale_while_the_other_decides() -> None:
    # Issue 16: ETHUSDT's funding backfill failed while BTCUSDT's loaded. The tables' freshness is
    # their freshest coin's, so ETH used to be decided on a crowded print ten hours old.
    eth = market(venue_symbol="ETHUSDT")
    eth[0] = eth[0].with_columns(pl.lit("ETH/USD").alias("symbol"))
    eth[1] = funding_rates("ETHUSDT", ((DAY, 0.0015),))
    output = evaluate(T_FUNDING, [*market(), *eth], params=BOTH_COINS)
    assert [signal.symbol for signal in output.signals] == ["BTC/USD"]
    assert output.abstention is not None and output.abstention.code is ReasonCode.INPUT_STALE
    assert output.abstention.detail == "ETH/USD: ETHUSDT funding's newest row is 10:00:00 old (max 9:00:00)"


def test_abstains_when_an_input_is_missing() -> None:
    bars, _, readings = market()
    output = evaluate(T_FUNDING, [bars, readings])
    assert output.abstention == Reason(ReasonCode.INPUT_MISSING, "funding_rates")
    assert output.signals == output.proposals == ()


def test_abstains_when_open_interest_is_stale() -> None:
    output = evaluate(T_FUNDING, market(open_interest_until=DAY + timedelta(hours=9)))
    assert output.abstention is not None and output.abstention.code is ReasonCode.INPUT_STALE
    assert output.abstention.detail.startswith("open_interest:")


def test_abstains_when_no_traded_coin_has_data() -> None:
    output = evaluate(T_FUNDING, market(venue_symbol="SOLUSDT"), params=BOTH_COINS)
    assert output == StrategyOutput.abstain(
        Reason(ReasonCode.SYMBOL_MISSING, "BTC/USD: no BTCUSDT funding; ETH/USD: no ETHUSDT funding")
    )


def test_detects_the_simulated_cascade_then_buys_its_bounce() -> None:
    frames = simulated(days=2)
    readings = (
        frames["open_interest"]
        .filter(pl.col("symbol") == "BTCUSDT")
        .sort("ts_event")
        .with_columns(peak=pl.col("open_interest").rolling_max_by("ts_event", window_size=timedelta(hours=1)))
    )
    # The first reading 8% under its hour's peak is inside the simulated flush (12-20% in 20-45 min).
    flushing = readings.filter(pl.col("open_interest") < 0.92 * pl.col("peak"))
    assert not flushing.is_empty()
    inside: datetime = flushing["ts_event"][0]
    cascade = STRATEGY.evaluate(
        context(simulated_snapshot(2, inside + MINUTE), PARAMS, Regime.CRASH, holdings={"BTC/USD": 0.01})
    )
    btc = [s for s in cascade.signals if s.symbol == "BTC/USD"]
    assert [(s.source, s.score < 0) for s in btc] == [("cascade", True)]
    assert [(p.symbol, p.side) for p in cascade.proposals if p.symbol == "BTC/USD"] == [("BTC/USD", Side.SELL)]

    # Once open interest has held for oi_stable_minutes the flush is over: the bounce.
    settled_at = inside + timedelta(minutes=PARAMS.oi_stable_minutes + 20)
    bounce = STRATEGY.evaluate(context(simulated_snapshot(2, settled_at), PARAMS, Regime.CRASH))
    assert [s.source for s in bounce.signals if s.symbol == "BTC/USD"] == ["bounce"]
    (buy,) = [p for p in bounce.proposals if p.symbol == "BTC/USD"]
    low = (
        frames["bars"]
        .filter(
            (pl.col("symbol") == "BTC/USD") & pl.col("ts_event").is_between(inside - timedelta(hours=1), settled_at)
        )["low"]
        .min()
    )
    assert isinstance(low, float)
    assert buy.side is Side.BUY and buy.stop < low < buy.entry < buy.target
