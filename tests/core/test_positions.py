"""Managed positions (stops, targets, trailing stops, time exits, R) and the book they live in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.book import Book, Holding
from core.positions import (
    Bar,
    ExitReason,
    ManagedPosition,
    close_position,
    open_position,
    update_position,
)
from core.types import ContractError, Fill, Side, TradeProposal

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def proposal(side: Side = Side.BUY, *, trail_pct: float | None = None, target: float | None = None) -> TradeProposal:
    # long: stop 95, target 110; short: stop 105, target 90 (risk 5 either way)
    return TradeProposal(
        strategy="s",
        symbol="SPY",
        side=side,
        entry=100.0,
        stop=100.0 - 5.0 * side.sign,
        target=target if target is not None else 100.0 + 10.0 * side.sign,
        horizon=timedelta(hours=1),
        confidence=0.6,
        signal_ids=(),
        ts_event=T0,
        trail_pct=trail_pct,
    )


def position(side: Side = Side.BUY, *, trail_pct: float | None = None, target: float | None = None) -> ManagedPosition:
    return open_position(proposal(side, trail_pct=trail_pct, target=target), "t1", 10.0, 100.0, T0)


def bar(minutes: int, high: float, low: float, close: float) -> Bar:
    return Bar(ts=T0 + timedelta(minutes=minutes), high=high, low=low, close=close)


# --- stops and targets --------------------------------------------------------------


def test_quiet_bar_keeps_the_position() -> None:
    updated, intent = update_position(position(), bar(1, 104.0, 97.0, 101.0))
    assert intent is None
    assert (updated.highest, updated.lowest) == (104.0, 97.0)


def test_long_stop_hit_on_the_low() -> None:
    _, intent = update_position(position(), bar(1, 101.0, 94.9, 96.0))
    assert intent is not None
    assert (intent.reason, intent.price, intent.side, intent.qty) == (ExitReason.STOP, 95.0, Side.SELL, 10.0)
    assert (intent.trade_id, intent.symbol, intent.strategy) == ("t1", "SPY", "s")


def test_long_target_hit_on_the_high() -> None:
    _, intent = update_position(position(), bar(1, 110.0, 99.0, 109.0))
    assert intent is not None
    assert (intent.reason, intent.price) == (ExitReason.TARGET, 110.0)


def test_stop_and_target_in_one_bar_assumes_the_stop_first() -> None:
    _, intent = update_position(position(), bar(1, 111.0, 94.0, 105.0))
    assert intent is not None
    assert (intent.reason, intent.price) == (ExitReason.STOP, 95.0)


def test_short_stop_and_target() -> None:
    short = position(Side.SELL)
    _, stopped = update_position(short, bar(1, 105.0, 99.0, 104.0))
    assert stopped is not None
    assert (stopped.reason, stopped.price, stopped.side) == (ExitReason.STOP, 105.0, Side.BUY)
    _, won = update_position(short, bar(1, 101.0, 89.0, 91.0))
    assert won is not None
    assert (won.reason, won.price) == (ExitReason.TARGET, 90.0)
    _, both = update_position(short, bar(1, 106.0, 89.0, 100.0))
    assert both is not None
    assert both.reason is ExitReason.STOP


# --- trailing stops -----------------------------------------------------------------


def test_long_trail_ratchets_up_only_and_exits() -> None:
    p = position(trail_pct=0.05, target=130.0)
    # at entry the trail is 100 x 0.95 = 95 = the fixed stop
    assert p.trail_level == pytest.approx(95.0)
    p, intent = update_position(p, bar(1, 120.0, 101.0, 118.0))
    assert intent is None
    assert p.trail_level == pytest.approx(114.0)  # 120 x 0.95
    assert p.effective_stop == pytest.approx(114.0)
    # a lower high does not lower the trail
    p, intent = update_position(p, bar(2, 116.0, 115.0, 115.5))
    assert intent is None
    assert p.trail_level == pytest.approx(114.0)
    _, intent = update_position(p, bar(3, 116.0, 113.0, 113.5))
    assert intent is not None
    assert intent.reason is ExitReason.TRAIL
    assert intent.price == pytest.approx(114.0)


def test_trail_crossed_after_the_bars_own_high() -> None:
    # high 120 raises the trail to 114; the close 113 came after the high: crossed in this bar
    _, intent = update_position(position(trail_pct=0.05, target=130.0), bar(1, 120.0, 112.0, 113.0))
    assert intent is not None
    assert intent.reason is ExitReason.TRAIL
    assert intent.price == pytest.approx(114.0)


def test_short_trail_ratchets_down_only_and_exits() -> None:
    p = position(Side.SELL, trail_pct=0.05, target=70.0)
    p, intent = update_position(p, bar(1, 99.0, 90.0, 92.0))
    assert intent is None
    assert p.trail_level == pytest.approx(94.5)  # 90 x 1.05
    p, intent = update_position(p, bar(2, 94.0, 93.0, 93.5))
    assert intent is None
    assert p.lowest == 90.0
    _, intent = update_position(p, bar(3, 95.0, 93.0, 94.8))
    assert intent is not None
    assert (intent.reason, intent.price, intent.side) == (ExitReason.TRAIL, pytest.approx(94.5), Side.BUY)


def test_loose_trail_leaves_the_fixed_stop_in_charge() -> None:
    # trail 10%: 100 x 0.9 = 90 is below the stop 95
    p = position(trail_pct=0.10)
    assert p.effective_stop == 95.0
    _, intent = update_position(p, bar(1, 100.0, 94.0, 96.0))
    assert intent is not None
    assert intent.reason is ExitReason.STOP


# --- time exits ---------------------------------------------------------------------


def test_time_exit_at_the_horizon_on_the_close() -> None:
    p, intent = update_position(position(), bar(59, 101.0, 99.0, 100.5))
    assert intent is None
    _, intent = update_position(p, bar(60, 101.0, 99.0, 100.5))
    assert intent is not None
    assert (intent.reason, intent.price) == (ExitReason.TIME, 100.5)


def test_stop_beats_time_exit() -> None:
    _, intent = update_position(position(), bar(90, 101.0, 94.0, 96.0))
    assert intent is not None
    assert intent.reason is ExitReason.STOP


# --- closing and R ------------------------------------------------------------------


def test_close_long_pnl_and_r() -> None:
    # (110 - 100) x 10 - 2 fees = 98; initial risk 10 x |100 - 95| = 50; R = 1.96
    closed = close_position(position(), 110.0, T0 + timedelta(minutes=5), ExitReason.TARGET, exit_fee=2.0)
    assert closed.pnl == pytest.approx(98.0)
    assert closed.realized_r == pytest.approx(1.96)


def test_a_close_charges_the_entry_fees_and_the_exit_fee() -> None:
    # (110 - 100) x 10 - 1.5 entry - 2 exit = 96.5; R = 96.5 / 50
    opened = open_position(proposal(), "t1", 10.0, 100.0, T0, entry_fees=1.5)
    closed = close_position(opened, 110.0, T0, ExitReason.TARGET, exit_fee=2.0)
    assert (closed.pnl, closed.fees, closed.rest) == (pytest.approx(96.5), pytest.approx(3.5), None)
    assert closed.realized_r == pytest.approx(96.5 / 50.0)


def test_a_partial_close_takes_its_share_of_the_entry_fees_and_the_rest_keeps_the_others() -> None:
    opened = open_position(proposal(), "t1", 10.0, 100.0, T0, entry_fees=2.0)
    first = close_position(opened, 110.0, T0, ExitReason.TARGET, exit_fee=0.3, qty=4.0)
    # 4 x 10 - 0.8 (4/10 of the entry fees) - 0.3 = 38.9; R on the part's own risk, 4 x 5
    assert (first.position.qty, first.position.entry_fees, first.pnl) == (4.0, pytest.approx(0.8), pytest.approx(38.9))
    assert first.realized_r == pytest.approx(38.9 / 20.0)
    assert first.rest is not None
    assert (first.rest.qty, first.rest.entry_fees) == (6.0, pytest.approx(1.2))
    second = close_position(first.rest, 110.0, T0, ExitReason.TARGET, exit_fee=0.45)
    whole = close_position(opened, 110.0, T0, ExitReason.TARGET, exit_fee=0.75)
    # In parts or at once, the same exits make the same P&L and pay the same fees.
    assert second.rest is None
    assert first.pnl + second.pnl == pytest.approx(whole.pnl)
    assert first.fees + second.fees == pytest.approx(whole.fees) == pytest.approx(2.75)


def test_closing_all_but_a_rounding_residue_closes_the_whole_position() -> None:
    opened = open_position(proposal(), "t1", 0.3, 100.0, T0, entry_fees=0.01)
    closed = close_position(opened, 101.0, T0, ExitReason.TIME, qty=0.1 + 0.2 - 1e-15)
    assert closed.rest is None and closed.position == opened


def test_close_short_pnl_and_r() -> None:
    # (104 - 100) x 10 x -1 = -40; risk 10 x 5 = 50; R = -0.8
    closed = close_position(position(Side.SELL), 104.0, T0, ExitReason.TIME)
    assert closed.pnl == pytest.approx(-40.0)
    assert closed.realized_r == pytest.approx(-0.8)


def test_r_uses_the_planned_risk_despite_entry_slippage() -> None:
    # filled at 101 instead of 100: risk stays 10 x 5 = 50; stop at 95 loses 60 -> R = -1.2
    p = open_position(proposal(), "t1", 10.0, 101.0, T0)
    assert close_position(p, 95.0, T0, ExitReason.STOP).realized_r == pytest.approx(-1.2)


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ContractError):
        Bar(ts=T0, high=99.0, low=100.0, close=99.5)
    with pytest.raises(ContractError):
        open_position(proposal(), "t1", 0.0, 100.0, T0)


# --- the book -----------------------------------------------------------------------


def fill(side: Side, qty: float, price: float, fee: float = 0.0, symbol: str = "SPY") -> Fill:
    return Fill(
        fill_id=f"{side}-{qty}-{price}",
        client_order_id="c",
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        fee=fee,
        ts_event=T0,
    )


def test_book_accounting_through_adds_reductions_and_a_flip() -> None:
    book = Book(100_000.0)
    # buy 10 @ 100, fee 1: cash 100_000 - 1_000 - 1 = 98_999; marked at the fill price
    assert book.apply_fill(fill(Side.BUY, 10, 100.0, fee=1.0)) == 0.0
    assert book.cash == pytest.approx(98_999.0)
    assert book.equity == pytest.approx(99_999.0)
    assert book.exposure("SPY") == pytest.approx(1_000.0)
    # buy 10 @ 110: avg (10 x 100 + 10 x 110) / 20 = 105; cash 98_999 - 1_100 = 97_899
    book.apply_fill(fill(Side.BUY, 10, 110.0))
    held = book.holding("SPY")
    assert held is not None
    assert (held.qty, held.avg_price) == (20.0, pytest.approx(105.0))
    # a fill marks only an unmarked symbol: the mark is still 100, so 20 x (100 - 105) = -100
    assert book.unrealized_pnl("SPY") == pytest.approx(-100.0)
    assert book.cash == pytest.approx(97_899.0)
    # sell 5 @ 120: realized 5 x (120 - 105) = 75; avg stays 105; cash + 600 = 98_499
    assert book.apply_fill(fill(Side.SELL, 5, 120.0)) == pytest.approx(75.0)
    held = book.holding("SPY")
    assert held is not None
    assert (held.qty, held.avg_price) == (15.0, pytest.approx(105.0))
    assert book.cash == pytest.approx(98_499.0)
    # sell 20 @ 100: closes 15 for 15 x (100 - 105) = -75, opens a short of 5 at 100
    assert book.apply_fill(fill(Side.SELL, 20, 100.0)) == pytest.approx(-75.0)
    assert book.holding("SPY") == Holding(-5.0, 100.0)
    assert book.cash == pytest.approx(100_499.0)
    # mark 90: the short gains -5 x (90 - 100) = 50; equity 100_499 - 5 x 90 = 100_049
    book.mark("SPY", 90.0)
    assert book.unrealized_pnl("SPY") == pytest.approx(50.0)
    assert book.equity == pytest.approx(100_049.0)
    assert book.gross_exposure == pytest.approx(450.0)
    # buy 5 @ 90 covers the short: realized 5 x (90 - 100) x -1 = 50
    assert book.apply_fill(fill(Side.BUY, 5, 90.0)) == pytest.approx(50.0)
    assert book.holding("SPY") is None
    assert book.qty("SPY") == 0.0
    # realized 75 - 75 + 50 = 50, fees 1: equity 100_000 + 50 - 1
    assert book.realized_pnl == pytest.approx(50.0)
    assert book.fees == pytest.approx(1.0)
    assert book.equity == pytest.approx(100_049.0)


def test_book_float_residue_counts_as_flat() -> None:
    book = Book(10_000.0)
    book.apply_fill(fill(Side.BUY, 0.3, 100.0, symbol="BTC/USD"))
    book.apply_fill(fill(Side.SELL, 0.1, 100.0, symbol="BTC/USD"))
    book.apply_fill(fill(Side.SELL, 0.2, 100.0, symbol="BTC/USD"))  # 0.3 - 0.1 - 0.2 = 2.8e-17
    assert book.holdings() == {}
    assert book.gross_exposure == 0.0


def test_book_copy_is_independent_and_marks_are_validated() -> None:
    book = Book(1_000.0, holdings={"SPY": Holding(2.0, 100.0)}, marks={"SPY": 110.0})
    assert book.equity == pytest.approx(1_220.0)  # 1_000 + 2 x 110
    twin = book.copy()
    twin.mark("SPY", 50.0)
    twin.apply_fill(fill(Side.SELL, 2, 50.0))
    assert book.equity == pytest.approx(1_220.0)
    assert book.last_price("SPY") == 110.0
    with pytest.raises(ContractError):
        book.mark("SPY", float("nan"))
    with pytest.raises(ContractError):
        book.mark("SPY", 0.0)
