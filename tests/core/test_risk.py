"""Risk manager: every hard limit cutting and rejecting, kill switch, cooldown, day roll.

Unless a test says otherwise: equity 100_000, moderate profile (3% position = 3_000,
5% asset = 5_000, 25% total = 25_000, 5% daily loss = 5_000, 3 losses -> 4 h cooldown,
30 trades a day), no trade history, so Kelly uses the prior p = 0.5 and b = the
proposal's reward:risk.

Proposals risk a quarter of the entry and aim at twice that (b = 2): a buy at 100 has
stop 75 and target 150. Two sizes recur:
* SMALL: realized vol 0.4. f = (2 x 0.5 - 0.5) / 2 x 0.5 = 0.125; vol scale =
  0.02 / 0.4 = 0.05; qty = 100_000 x 0.125 x 0.05 / 25 = 25, notional 2_500: inside
  every limit.
* BIG: no volatility estimate (scale 1.0): qty 100_000 x 0.125 / 25 = 500, notional
  50_000, so the 3% position limit cuts it to 3_000 (qty 30).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from core.book import Book, Holding
from core.config import PROFILE_CAPS, RiskConfig, RiskProfile
from core.positions import Bar, ExitReason, open_position, update_position
from core.risk import (
    Evaluation,
    RiskEventKind,
    RiskManager,
    RiskState,
    WorkingOrder,
    utc_trading_day,
)
from core.sizing import TradeStats
from core.types import ContractError, Reason, ReasonCode, Side, TradeProposal, TradingState

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
DAY0 = date(2026, 3, 2)
HALT_REASON = Reason(ReasonCode.KILL_SWITCH, "until the trading day after 2026-03-02")
SMALL_VOL = 0.4


def always_tradable(symbol: str, now: datetime) -> bool:
    return True


def manager(
    config: RiskConfig | None = None,
    *,
    is_tradable: Callable[[str, datetime], bool] = always_tradable,
    trading_day: Callable[[datetime], date] = utc_trading_day,
    min_notional: dict[str, float] | None = None,
) -> RiskManager:
    return RiskManager(
        config=config or RiskConfig(),
        is_tradable=is_tradable,
        trading_day=trading_day,
        min_notional=min_notional or {},
    )


def proposal(
    symbol: str = "SPY",
    side: Side = Side.BUY,
    strategy: str = "s",
    entry: float = 100.0,
) -> TradeProposal:
    risk = entry / 4
    return TradeProposal(
        strategy=strategy,
        symbol=symbol,
        side=side,
        entry=entry,
        stop=entry - side.sign * risk,
        target=entry + side.sign * 2 * risk,
        horizon=timedelta(hours=4),
        confidence=0.7,
        signal_ids=(),
        ts_event=T0,
    )


def evaluate(
    risk: RiskManager,
    proposals: list[TradeProposal],
    book: Book,
    now: datetime = T0,
    state: RiskState | None = None,
    vol: float | None = None,
    stats: dict[str, TradeStats] | None = None,
) -> Evaluation:
    state = state or risk.initial_state(T0, book.equity)
    realized_vol = {} if vol is None else {p.symbol: vol for p in proposals}
    return risk.evaluate(proposals, state, book, now, stats=stats or {}, realized_vol=realized_vol)


def book_with(cash: float, **holdings: float) -> Book:
    """Holdings given as symbol=qty, all at price 100 (the proposals' entry)."""
    return Book(cash, holdings={s: Holding(q, 100.0) for s, q in holdings.items()})


# --- sizing inside the limits -------------------------------------------------------


def test_small_proposal_approved_uncut() -> None:
    result = evaluate(manager(), [proposal()], Book(100_000.0), vol=SMALL_VOL)
    (decision,) = result.decisions
    assert decision.approved
    assert decision.qty == pytest.approx(25.0)
    assert decision.notional == pytest.approx(2_500.0)
    assert decision.codes == ()
    assert decision.kelly_fraction == pytest.approx(0.125)
    assert decision.vol_scale == pytest.approx(0.05)


# --- max per position ---------------------------------------------------------------


def test_max_position_cuts() -> None:
    (decision,) = evaluate(manager(), [proposal()], Book(100_000.0)).decisions
    # 50_000 cut to 3% x 100_000 = 3_000 -> qty 30
    assert decision.approved
    assert decision.notional == pytest.approx(3_000.0)
    assert decision.qty == pytest.approx(30.0)
    assert decision.codes == ("max_position",)


# --- max per asset ------------------------------------------------------------------


def test_max_asset_cuts_with_existing_exposure() -> None:
    # holding 30 SPY x 100 = 3_000; equity = 97_000 + 3_000 = 100_000
    # asset room = 5_000 - 3_000 = 2_000 -> qty 20
    book = book_with(97_000.0, SPY=30.0)
    (decision,) = evaluate(manager(), [proposal()], book).decisions
    assert decision.approved
    assert decision.notional == pytest.approx(2_000.0)
    assert decision.codes == ("max_position", "max_asset")


def test_max_asset_counts_a_short_as_exposure() -> None:
    # short 30 SPY: |-30 x 100| = 3_000 of exposure; cash 103_000 - 3_000 = equity 100_000
    book = book_with(103_000.0, SPY=-30.0)
    (decision,) = evaluate(manager(), [proposal()], book).decisions
    assert decision.notional == pytest.approx(2_000.0)
    assert decision.codes == ("max_position", "max_asset")


def test_max_asset_rejects_when_full() -> None:
    # 50 SPY x 100 = 5_000 = 5% of 100_000: no room
    book = book_with(95_000.0, SPY=50.0)
    (decision,) = evaluate(manager(), [proposal()], book).decisions
    assert not decision.approved
    assert decision.qty == 0.0
    assert decision.codes == ("max_position", "max_asset")


def test_earlier_approvals_consume_the_asset_limit() -> None:
    # 1st: 3_000 (position cap); 2nd: room 5_000 - 3_000 = 2_000; 3rd: room 0
    result = evaluate(manager(), [proposal(), proposal(strategy="t"), proposal(strategy="u")], Book(100_000.0))
    first, second, third = result.decisions
    assert first.notional == pytest.approx(3_000.0)
    assert second.notional == pytest.approx(2_000.0)
    assert second.codes == ("max_position", "max_asset")
    assert not third.approved
    assert third.codes == ("max_position", "max_asset")


# --- orders still working ----------------------------------------------------------


def working(symbol: str, qty: float, side: Side = Side.BUY, intent: str = "entry") -> WorkingOrder:
    return WorkingOrder(symbol, side, intent, qty, 100.0)


def test_a_working_entry_takes_its_asset_room_until_it_fills() -> None:
    """Issue 16, defect 14: an unfilled entry of an earlier cycle did not count toward the limits."""
    # 30 SPY still working x 100 = 3_000: asset room 5_000 - 3_000 = 2_000 -> qty 20
    risk = manager()
    book = Book(100_000.0)
    state = risk.initial_state(T0, book.equity)
    (decision,) = risk.evaluate(
        [proposal()], state, book, T0, stats={}, realized_vol={}, working=[working("SPY", 30.0)]
    ).decisions
    assert decision.notional == pytest.approx(2_000.0)
    assert decision.codes == ("max_position", "max_asset")


def test_a_partly_filled_entry_counts_its_holding_and_its_unfilled_rest() -> None:
    # 10 held (filled) + 20 still working = 3_000: the same room of 2_000
    risk = manager()
    book = book_with(99_000.0, SPY=10.0)
    state = risk.initial_state(T0, book.equity)
    (decision,) = risk.evaluate(
        [proposal()], state, book, T0, stats={}, realized_vol={}, working=[working("SPY", 20.0)]
    ).decisions
    assert decision.notional == pytest.approx(2_000.0)


def test_working_entries_fill_the_total_exposure_limit() -> None:
    # 8 x 30 x 100 = 24_000 working on eight symbols: 1_000 of the 25_000 left
    risk = manager()
    book = Book(100_000.0)
    state = risk.initial_state(T0, book.equity)
    orders = [working(f"S{i}", 30.0) for i in range(8)]
    (decision,) = risk.evaluate([proposal("X")], state, book, T0, stats={}, realized_vol={}, working=orders).decisions
    assert decision.notional == pytest.approx(1_000.0)
    assert decision.codes == ("max_position", "max_total_exposure")


def test_a_working_exit_frees_nothing_until_it_fills() -> None:
    # 50 SPY held = the 5_000 asset cap; the exit selling them may never fill
    risk = manager()
    book = book_with(95_000.0, SPY=50.0)
    state = risk.initial_state(T0, book.equity)
    exit_order = working("SPY", 50.0, Side.SELL, "exit")
    (decision,) = risk.evaluate(
        [proposal()], state, book, T0, stats={}, realized_vol={}, working=[exit_order]
    ).decisions
    assert not decision.approved
    assert decision.codes == ("max_position", "max_asset")


def test_a_working_crypto_sell_holds_what_it_sells() -> None:
    # 0.01 BTC held, all of it being sold by an exit still working: nothing is left to sell
    risk = manager()
    book = Book(99_400.0, holdings={"BTC/USD": Holding(0.01, 60_000.0)})
    state = risk.initial_state(T0, book.equity)
    exit_order = WorkingOrder("BTC/USD", Side.SELL, "exit", 0.01, 60_000.0)
    sell = proposal("BTC/USD", Side.SELL, entry=60_000.0)
    (decision,) = risk.evaluate([sell], state, book, T0, stats={}, realized_vol={}, working=[exit_order]).decisions
    assert not decision.approved
    assert "crypto_short" in decision.codes


# --- max total exposure -------------------------------------------------------------


def test_max_total_exposure_cuts() -> None:
    # 240 QQQ x 100 = 24_000 gross; equity 76_000 + 24_000 = 100_000; room 25_000 - 24_000 = 1_000
    book = book_with(76_000.0, QQQ=240.0)
    (decision,) = evaluate(manager(), [proposal()], book).decisions
    assert decision.approved
    assert decision.notional == pytest.approx(1_000.0)
    assert decision.codes == ("max_position", "max_total_exposure")


def test_max_total_exposure_rejects_when_full() -> None:
    book = book_with(75_000.0, QQQ=250.0)  # 25_000 gross = 25%
    (decision,) = evaluate(manager(), [proposal()], book).decisions
    assert not decision.approved
    assert decision.codes == ("max_position", "max_total_exposure")


def test_earlier_approvals_consume_the_total_exposure() -> None:
    # eight symbols x 3_000 = 24_000; the ninth gets 1_000; the tenth nothing
    symbols = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]
    decisions = evaluate(manager(), [proposal(s) for s in symbols], Book(100_000.0)).decisions
    assert [d.notional for d in decisions[:8]] == pytest.approx([3_000.0] * 8)
    assert decisions[8].notional == pytest.approx(1_000.0)
    assert decisions[8].codes == ("max_position", "max_total_exposure")
    assert not decisions[9].approved
    assert decisions[9].codes == ("max_position", "max_total_exposure")


# --- per-profile caps ---------------------------------------------------------------

PROFILES = [
    # profile, position cap notional, equity at which the daily loss trips, losses to cooldown
    (RiskProfile.CONSERVATIVE, 1_000.0, 97_000.0, 2),  # 1%, 3%
    (RiskProfile.MODERATE, 3_000.0, 95_000.0, 3),  # 3%, 5%
    (RiskProfile.AGGRESSIVE, 5_000.0, 92_000.0, 4),  # 5%, 8%
]


@pytest.mark.parametrize(("profile", "position_cap", "trip_equity", "losses"), PROFILES)
def test_profile_caps(profile: RiskProfile, position_cap: float, trip_equity: float, losses: int) -> None:
    risk = manager(RiskConfig(profile=profile))
    (decision,) = evaluate(risk, [proposal()], Book(100_000.0)).decisions
    assert decision.notional == pytest.approx(position_cap)
    assert decision.codes == ("max_position",)

    state = risk.initial_state(T0, 100_000.0)
    assert risk.mark_to_market(state, T0, trip_equity + 0.01).state.trading_state is TradingState.ACTIVE
    assert risk.mark_to_market(state, T0, trip_equity).state.trading_state is TradingState.HALTED

    for _ in range(losses - 1):
        state = risk.record_trade_close(state, T0, -1.0).state
    assert state.trading_state is TradingState.ACTIVE
    assert risk.record_trade_close(state, T0, -1.0).state.trading_state is TradingState.COOLDOWN


def test_tightened_limits_apply_and_looser_ones_are_refused() -> None:
    risk = manager(RiskConfig(profile=RiskProfile.MODERATE, max_position=0.02))
    (decision,) = evaluate(risk, [proposal()], Book(100_000.0)).decisions
    assert decision.notional == pytest.approx(2_000.0)  # 2% of 100_000
    looser = PROFILE_CAPS[RiskProfile.CONSERVATIVE].max_position * 2
    with pytest.raises(ValidationError, match="looser than the conservative"):
        RiskConfig(profile=RiskProfile.CONSERVATIVE, max_position=looser)


# --- kill switch --------------------------------------------------------------------


def test_kill_switch_trips_exactly_at_the_threshold() -> None:
    risk = manager()
    state = risk.initial_state(T0, 100_000.0)
    # loss 4_999.99 < 5% x 100_000 = 5_000
    below = risk.mark_to_market(state, T0, 95_000.01)
    assert below.events == ()
    assert below.state.trading_state is TradingState.ACTIVE
    # loss 5_000 = threshold
    tripped = risk.mark_to_market(state, T0, 95_000.0)
    (event,) = tripped.events
    assert event.event is RiskEventKind.HALTED
    assert event.daily_pnl == pytest.approx(-5_000.0)
    assert event.equity == 95_000.0
    assert tripped.state.halted_day == DAY0
    assert tripped.state.trading_state is TradingState.HALTED


def test_halted_holds_for_the_rest_of_the_day_even_after_recovery() -> None:
    risk = manager()
    halted = risk.mark_to_market(risk.initial_state(T0, 100_000.0), T0, 94_000.0).state
    # equity back above the day's start, 23:59 UTC the same day
    late = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    recovered = risk.mark_to_market(halted, late, 101_000.0)
    assert recovered.events == ()
    assert recovered.state.trading_state is TradingState.HALTED
    result = evaluate(risk, [proposal()], Book(101_000.0), now=late, state=halted, vol=SMALL_VOL)
    assert result.events == ()
    (decision,) = result.decisions
    assert not decision.approved
    assert decision.reasons == (HALT_REASON,)
    assert result.state.trades_today == 0


def test_exits_still_pass_while_halted() -> None:
    risk = manager()
    halted = risk.mark_to_market(risk.initial_state(T0, 100_000.0), T0, 94_000.0).state
    position = open_position(proposal(), "t1", qty=10.0, entry_price=100.0, opened_at=T0)
    # the stop (75) is inside the bar: the position manager exits whatever the risk state
    _, intent = update_position(position, Bar(ts=T0 + timedelta(minutes=1), high=60.0, low=45.0, close=48.0))
    assert intent is not None
    assert intent.reason is ExitReason.STOP
    assert intent.side is Side.SELL
    # recording the closed trade keeps the switch on
    after = risk.record_trade_close(halted, T0 + timedelta(minutes=1), -500.0)
    assert after.state.trading_state is TradingState.HALTED


def test_resumes_next_trading_day_with_an_event() -> None:
    risk = manager()
    halted = risk.mark_to_market(risk.initial_state(T0, 100_000.0), T0, 95_000.0).state
    midnight = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    result = evaluate(risk, [proposal()], Book(95_000.0), now=midnight, state=halted, vol=SMALL_VOL)
    (event,) = result.events
    assert event.event is RiskEventKind.RESUMED
    assert event.reason == "new trading day 2026-03-03"
    assert result.decisions[0].approved
    assert result.state.trading_state is TradingState.ACTIVE
    assert result.state.day == date(2026, 3, 3)
    assert result.state.day_start_equity == 95_000.0
    # the new day's threshold is 5% x 95_000 = 4_750
    assert risk.mark_to_market(result.state, midnight, 90_250.01).events == ()
    assert risk.mark_to_market(result.state, midnight, 90_250.0).state.trading_state is TradingState.HALTED


def test_day_boundary_is_a_parameter() -> None:
    new_york = timezone(timedelta(hours=-5))
    risk = manager(trading_day=lambda ts: ts.astimezone(new_york).date())
    evening = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 18:30 in New York
    halted = risk.mark_to_market(risk.initial_state(evening, 100_000.0), evening, 90_000.0).state
    # 01:00 UTC on the 3rd is still the 2nd in New York
    still = risk.advance(halted, datetime(2026, 3, 3, 1, 0, tzinfo=UTC), 90_000.0)
    assert still.events == ()
    assert still.state.trading_state is TradingState.HALTED
    resumed = risk.advance(halted, datetime(2026, 3, 3, 5, 0, tzinfo=UTC), 90_000.0)
    assert [e.event for e in resumed.events] == [RiskEventKind.RESUMED]


def test_utc_trading_day() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert utc_trading_day(datetime(2026, 3, 3, 1, 0, tzinfo=plus_two)) == DAY0


def test_transitions_are_idempotent() -> None:
    risk = manager()
    first = risk.advance(risk.initial_state(T0, 100_000.0), T0, 90_000.0)
    assert len(first.events) == 1
    assert risk.advance(first.state, T0, 90_000.0).events == ()


def test_day_never_rolls_backwards() -> None:
    risk = manager()
    state = risk.initial_state(T0, 100_000.0)
    assert risk.roll_day(state, T0 - timedelta(days=1), 50_000.0).state is state


def test_peak_equity_and_drawdown() -> None:
    risk = manager()
    state = risk.mark_to_market(risk.initial_state(T0, 100_000.0), T0, 110_000.0).state
    state = risk.mark_to_market(state, T0, 104_500.0).state
    assert state.peak_equity == 110_000.0
    assert state.drawdown(104_500.0) == pytest.approx(0.05)  # 1 - 104_500 / 110_000
    assert state.daily_pnl(104_500.0) == pytest.approx(4_500.0)


# --- consecutive losses and cooldown ------------------------------------------------


def test_three_losses_start_a_four_hour_cooldown_then_it_ends() -> None:
    risk = manager()
    state = risk.initial_state(T0, 100_000.0)
    state = risk.record_trade_close(state, T0, -100.0).state
    state = risk.record_trade_close(state, T0, -100.0).state
    assert state.consecutive_losses == 2
    started = risk.record_trade_close(state, T0, -100.0)
    (event,) = started.events
    assert event.event is RiskEventKind.COOLDOWN_STARTED
    assert event.until_ts == T0 + timedelta(hours=4)
    assert started.state.trading_state is TradingState.COOLDOWN
    assert started.state.consecutive_losses == 0

    almost = evaluate(risk, [proposal()], Book(100_000.0), T0 + timedelta(hours=3, minutes=59), started.state)
    assert almost.events == ()
    assert almost.decisions[0].reasons == (
        Reason(ReasonCode.COOLDOWN, "until 2026-03-02T18:30:00+00:00"),
        Reason(ReasonCode.MAX_POSITION),
    )

    over = evaluate(risk, [proposal()], Book(100_000.0), T0 + timedelta(hours=4), started.state)
    (ended,) = over.events
    assert ended.event is RiskEventKind.COOLDOWN_ENDED
    assert ended.until_ts == T0 + timedelta(hours=4)
    assert over.decisions[0].approved
    assert over.state.trading_state is TradingState.ACTIVE


def test_a_win_or_a_scratch_ends_the_losing_streak() -> None:
    risk = manager()
    state = risk.initial_state(T0, 100_000.0)
    for pnl in (-1.0, -1.0, 5.0, -1.0, -1.0, 0.0, -1.0, -1.0):
        transition = risk.record_trade_close(state, T0, pnl)
        assert transition.events == ()
        state = transition.state
    assert state.consecutive_losses == 2
    assert state.trading_state is TradingState.ACTIVE


# --- trades per day -----------------------------------------------------------------


def test_trades_per_day_cap_and_reset_on_the_new_day() -> None:
    risk = manager(RiskConfig(max_trades_per_day=2))
    book = Book(100_000.0)
    first = evaluate(risk, [proposal("A"), proposal("B"), proposal("C")], book, vol=SMALL_VOL)
    assert [d.approved for d in first.decisions] == [True, True, False]
    assert first.decisions[2].codes == ("max_trades_per_day",)
    accepted = first.state.count_trades(2)  # the broker accepted both orders
    assert accepted.trades_today == 2

    later = evaluate(risk, [proposal("D")], book, T0 + timedelta(hours=1), accepted, vol=SMALL_VOL)
    assert later.decisions[0].codes == ("max_trades_per_day",)

    next_day = evaluate(risk, [proposal("D")], book, T0 + timedelta(days=1), accepted, vol=SMALL_VOL)
    assert next_day.decisions[0].approved
    assert next_day.state.trades_today == 0


def test_an_approval_spends_no_trade_of_the_day_until_the_broker_accepts_its_order() -> None:
    """Issue 16, defect 2: approvals whose orders were refused used up the day's trade limit."""
    risk = manager(RiskConfig(max_trades_per_day=2))
    book = Book(100_000.0)
    state = risk.initial_state(T0, book.equity)
    for minute in range(5):  # every order refused: nothing is counted
        evaluation = evaluate(risk, [proposal("A")], book, T0 + timedelta(minutes=minute), state, vol=SMALL_VOL)
        assert evaluation.decisions[0].approved
        state = evaluation.state
    assert state.trades_today == 0
    # One cycle still approves no more than the day has left.
    full = evaluate(risk, [proposal("A"), proposal("B"), proposal("C")], book, T0, state.count_trades(1), SMALL_VOL)
    assert [d.approved for d in full.decisions] == [True, False, False]
    assert full.decisions[1].codes == ("max_trades_per_day",)


# --- broker constraints -------------------------------------------------------------


def test_crypto_short_refused_without_a_holding() -> None:
    (decision,) = evaluate(manager(), [proposal("BTC/USD", Side.SELL, entry=60_000.0)], Book(100_000.0)).decisions
    assert not decision.approved
    assert "crypto_short" in decision.codes


def test_crypto_sell_cut_to_the_held_quantity_then_refused() -> None:
    # 0.01 BTC at 60_000 = 600; equity 99_400 + 600 = 100_000
    book = Book(99_400.0, holdings={"BTC/USD": Holding(0.01, 60_000.0)})
    sell = proposal("BTC/USD", Side.SELL, entry=60_000.0)
    # Kelly alone: 100_000 x 0.125 / 15_000 = 0.833 BTC -> cut to the 0.01 held
    first, second = evaluate(manager(), [sell, proposal("BTC/USD", Side.SELL, "t", entry=60_000.0)], book).decisions
    assert first.approved
    assert first.qty == pytest.approx(0.01)
    assert first.notional == pytest.approx(600.0)
    assert first.codes == ("crypto_short",)
    # the first sell already takes the whole holding
    assert not second.approved
    assert "crypto_short" in second.codes


def test_an_equity_short_is_sized_in_whole_shares() -> None:
    """Issue 16, defect 3: Alpaca sells short no fraction of a share."""
    # risk per share 103 / 4 = 25.75: 100_000 x 0.125 x 0.05 / 25.75 = 24.27 shares -> 24
    (short,) = evaluate(manager(), [proposal(side=Side.SELL, entry=103.0)], Book(100_000.0), vol=SMALL_VOL).decisions
    assert short.approved
    assert short.qty == 24.0
    assert short.notional == pytest.approx(24 * 103.0)
    # a long may hold a fraction
    (long,) = evaluate(manager(), [proposal(entry=103.0)], Book(100_000.0), vol=SMALL_VOL).decisions
    assert long.qty == pytest.approx(24.27, abs=0.01)


def test_an_equity_short_of_less_than_one_share_is_dropped_with_its_reason() -> None:
    # 1_000 x 0.125 x 0.05 / 25 = 0.25 shares, 25 of notional: above the minimum, below a share
    (short,) = evaluate(manager(), [proposal(side=Side.SELL)], Book(1_000.0), vol=SMALL_VOL).decisions
    assert not short.approved
    assert short.codes == ("fractional_short",)


def test_a_short_cut_to_whole_shares_by_a_cap_keeps_them() -> None:
    # the position cap allows 3% x 10_009 / 100.09 = 3 shares, which floating point makes 2.9999999999999996
    (short,) = evaluate(manager(), [proposal(side=Side.SELL, entry=100.09)], Book(10_009.0)).decisions
    assert short.qty == 3.0
    assert short.codes == ("max_position",)


def test_a_crypto_buy_of_the_same_cycle_does_not_cover_a_sell() -> None:
    # the buy might not fill: the sell would then open a short
    buy, sell = evaluate(
        manager(),
        [proposal("BTC/USD", entry=60_000.0), proposal("BTC/USD", Side.SELL, "t", entry=60_000.0)],
        Book(100_000.0),
    ).decisions
    assert buy.approved
    assert not sell.approved
    assert "crypto_short" in sell.codes


def test_equity_short_and_crypto_long_are_allowed() -> None:
    decisions = evaluate(
        manager(), [proposal("SPY", Side.SELL), proposal("ETH/USD", entry=2_000.0)], Book(100_000.0)
    ).decisions
    assert [d.approved for d in decisions] == [True, True]
    assert [d.codes for d in decisions] == [("max_position",), ("max_position",)]


def test_not_tradable_rejected_and_asked_with_the_cycle_time() -> None:
    asked: list[tuple[str, datetime]] = []

    def spy_closed(symbol: str, now: datetime) -> bool:
        asked.append((symbol, now))
        return symbol != "SPY"

    risk = manager(is_tradable=spy_closed)
    spy, qqq = evaluate(risk, [proposal("SPY"), proposal("QQQ")], Book(100_000.0), vol=SMALL_VOL).decisions
    assert not spy.approved
    assert spy.codes == ("not_tradable",)
    assert qqq.approved
    assert asked == [("SPY", T0), ("QQQ", T0)]


# --- sizing rejections --------------------------------------------------------------


def test_kelly_non_positive_rejected() -> None:
    # 30 trades: 9 wins +1R, 21 losses -1R -> p 0.3, b 1: (0.3 - 0.7) / 1 < 0
    stats = {"s": TradeStats.from_r_multiples([1.0] * 9 + [-1.0] * 21)}
    (decision,) = evaluate(manager(), [proposal()], Book(100_000.0), stats=stats).decisions
    assert not decision.approved
    assert decision.codes == ("kelly_non_positive",)
    assert decision.kelly_fraction is not None and decision.kelly_fraction < 0


def test_below_min_notional_per_strategy() -> None:
    risk = manager(min_notional={"s": 5_000.0, "t": 2_000.0})
    cut, small = evaluate(risk, [proposal("SPY"), proposal("QQQ", strategy="t")], Book(100_000.0)).decisions
    # "s": cut to 3_000 < 5_000
    assert not cut.approved
    assert cut.codes == ("max_position", "below_min_notional")
    # "t": 3_000 >= 2_000
    assert small.approved


def test_dust_orders_fall_below_the_default_min_notional() -> None:
    # 40 trades: 20 wins of +1.05R, 20 losses of -1R: p = 0.5, b = 1.05, no prior left
    # f = (1.05 x 0.5 - 0.5) / 1.05 x 0.5 = 0.011905
    # qty = 100_000 x 0.011905 x 0.05 / 25 = 2.381, notional 238.1 (SPY at 100)
    stats = {"s": TradeStats.from_r_multiples([1.05] * 20 + [-1.0] * 20)}
    (fine,) = evaluate(manager(), [proposal()], Book(100_000.0), vol=SMALL_VOL, stats=stats).decisions
    assert fine.approved
    assert fine.notional == pytest.approx(238.095, rel=1e-4)
    # the same at 100 of equity: notional 0.238 < the default 1.0
    (dust,) = evaluate(manager(), [proposal()], Book(100.0), vol=SMALL_VOL, stats=stats).decisions
    assert dust.codes == ("below_min_notional",)


def test_a_rejection_lists_every_reason() -> None:
    risk = manager(is_tradable=lambda symbol, now: False)
    state = RiskState(
        day=DAY0,
        day_start_equity=100_000.0,
        peak_equity=100_000.0,
        trades_today=30,
        halted_day=DAY0,
        cooldown_until=T0 + timedelta(hours=1),
    )
    (decision,) = evaluate(risk, [proposal("BTC/USD", Side.SELL, entry=60_000.0)], Book(100_000.0), T0, state).decisions
    assert decision.reasons == (
        HALT_REASON,
        Reason(ReasonCode.COOLDOWN, "until 2026-03-02T15:30:00+00:00"),
        *(Reason(ReasonCode(code)) for code in ("max_trades_per_day", "not_tradable", "crypto_short", "max_position")),
    )


def test_naive_time_is_refused() -> None:
    risk = manager()
    with pytest.raises(ContractError):
        risk.initial_state(datetime(2026, 3, 2, 14, 30), 100_000.0)  # noqa: DTZ001


def test_blocks_at_other_moments_keep_their_code_and_differ_only_in_detail() -> None:
    risk = manager()
    decisions = []
    for day, cooldown in ((DAY0, T0 + timedelta(hours=1)), (DAY0 + timedelta(days=1), T0 + timedelta(days=1, hours=3))):
        state = RiskState(day, 100_000.0, 100_000.0, halted_day=day, cooldown_until=cooldown)
        now = datetime.combine(day, T0.timetz())
        decisions += evaluate(risk, [proposal()], Book(100_000.0), now, state).decisions
    first, second = decisions
    assert first.codes == second.codes == ("kill_switch", "cooldown", "max_position")
    assert [r.detail for r in first.reasons] != [r.detail for r in second.reasons]
