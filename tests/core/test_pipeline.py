"""run_cycle and apply_fills: the one decision path of every world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import ClassVar

import polars as pl
import pytest
from paper_session import MINUTE, START, BuySpy, bar_frame

from core.book import Book
from core.calendar import Timeframe, nyse_calendar
from core.config import EngineConfig, RegimeConfig
from core.pipeline import (
    CycleResult,
    EngineState,
    RefusedView,
    apply_fills,
    client_order_id,
    forget_orders,
    reconcile_positions,
    run_cycle,
    settle_submissions,
)
from core.positions import ExitReason, ManagedPosition, open_position
from core.snapshot import MarketSnapshot
from core.strategy import Strategy, StrategyContext, StrategyOutput
from core.types import Fill, Reason, ReasonCode, Regime, Side, TradeProposal, TradingState

# The regime features need five sessions of SPY; these tests care about the rest of the cycle.
CONFIG = EngineConfig(regime=RegimeConfig(observation_cycles=2))


CALENDAR = nyse_calendar(date(2024, 1, 1), date(2028, 12, 31))


def always(symbol: str, now: datetime) -> bool:
    return True


def snapshot_at(now: datetime, prices: Mapping[str, list[float]]) -> MarketSnapshot:
    return MarketSnapshot(as_of=now, tables={"bars": bar_frame(prices).filter(pl.col("ts_ingested") <= now)})


class Broken:
    name: ClassVar[str] = "macro_event"
    symbols: ClassVar[tuple[str, ...]] = ("SPY",)
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"bars": timedelta(minutes=5)})
    overrides_regime: ClassVar[bool] = True
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.MIN_1

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        raise ZeroDivisionError("a bug in a strategy")


class NeedsFunding:
    name: ClassVar[str] = "liquidation_cascade"
    symbols: ClassVar[tuple[str, ...]] = ("BTC/USD",)
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"funding_rates": timedelta(hours=9)})
    overrides_regime: ClassVar[bool] = False
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.MIN_1

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        raise AssertionError("never called without its input")


STRATEGIES = (BuySpy(), Broken(), NeedsFunding())
PRICES = {"SPY": [500.0 + 0.1 * i for i in range(60)], "TLT": [90.0] * 60}


def cycles(n: int, strategies: Sequence[Strategy] = STRATEGIES) -> list[CycleResult]:
    state = EngineState()
    book = Book(100_000.0)
    results = []
    for i in range(n):
        now = START + (i + 10) * MINUTE
        result = run_cycle(
            snapshot_at(now, PRICES),
            book,
            state,
            CONFIG,
            now,
            strategies=strategies,
            is_tradable=always,
            calendar=CALENDAR,
        )
        state = result.state
        results.append(result)
    return results


def test_the_first_cycles_only_observe() -> None:
    first, second, third = cycles(3)
    assert first.observation_only and second.observation_only and not third.observation_only
    assert first.orders == () and second.orders == ()
    assert len(first.signals) == 1  # views are still recorded while observing
    assert [o.symbol for o in third.entries] == ["SPY"]


def test_a_broken_strategy_or_a_missing_input_abstains_and_the_others_decide() -> None:
    result = cycles(3)[-1]
    assert result.abstentions == {
        "macro_event": Reason(ReasonCode.ERROR, "ZeroDivisionError: a bug in a strategy"),
        "liquidation_cascade": Reason(ReasonCode.INPUT_MISSING, "funding_rates"),
    }
    assert len(result.entries) == 1


def test_a_cycle_is_deterministic() -> None:
    once, again = cycles(4)[-1], cycles(4)[-1]
    assert once.orders == again.orders
    assert once.decisions == again.decisions
    assert once.state == again.state


def test_an_approved_entry_is_sized_within_the_position_limit_and_named_deterministically() -> None:
    result = cycles(3)[-1]
    [entry] = result.entries
    notional = entry.qty * entry.decision_price
    assert 0 < notional <= 0.03 * 100_000 + 1e-6
    assert entry.client_order_id == client_order_id(result.now, "cross_asset", "SPY", "entry:buy")
    assert len(entry.client_order_id) < 128
    assert entry.client_order_id in result.state.pending_entries


def test_fills_open_a_position_which_its_stop_later_closes_with_a_recorded_loss() -> None:
    state = cycles(3)[-1].state
    [(client_id, proposal)] = state.pending_entries.items()
    entry_order = cycles(3)[-1].entries[0]
    fill = Fill("f1", client_id, "SPY", Side.BUY, entry_order.qty, proposal.entry, 0.5, proposal.ts_event + MINUTE)
    opened = apply_fills(state, [fill], {client_id: entry_order}, CONFIG, fill.ts_event)
    assert [p.symbol for p in opened.opened] == ["SPY"]
    assert client_id in opened.state.pending_entries  # until the broker says the order is final
    # The price falls through the 1% stop: the next cycle exits, whatever else happens.
    crash = {"SPY": [*PRICES["SPY"][:14], proposal.stop * 0.99, proposal.stop * 0.98]}
    now = START + 16 * MINUTE
    result = run_cycle(
        snapshot_at(now, crash),
        Book(100_000.0),
        opened.state,
        CONFIG,
        now,
        strategies=STRATEGIES,
        is_tradable=always,
        calendar=CALENDAR,
    )
    [exit_order] = [o for o in result.orders if o.intent == "exit"]
    assert (exit_order.side, exit_order.reason, exit_order.qty) == (Side.SELL, "stop", entry_order.qty)
    exit_fill = Fill("f2", exit_order.client_order_id, "SPY", Side.SELL, exit_order.qty, proposal.stop, 0.5, now)
    closed = apply_fills(result.state, [exit_fill], {exit_order.client_order_id: exit_order}, CONFIG, now)
    [trade] = closed.closed
    assert trade.pnl < 0 and trade.realized_r == pytest.approx(-1.0, abs=0.05)
    assert closed.state.positions == ()
    assert [u.strategy for u in closed.weight_updates] == ["cross_asset"]
    assert closed.state.performance["cross_asset"].n_total == 1


class EntersOnce(BuySpy):
    """BuySpy's view, proposed only while the strategy has not entered it."""

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        output = super().evaluate(context)
        return replace(output, proposals=()) if ("SPY", Side.BUY) in context.entered else output


def test_a_strategy_sees_the_views_it_entered_while_the_entry_works_and_the_position_is_open() -> None:
    strategies = (EntersOnce(),)
    first = cycles(4, strategies)
    assert [len(r.entries) for r in first] == [0, 0, 1, 0]  # the entry still works at the fourth
    state, entry_order = first[-1].state, first[2].entries[0]
    fill = Fill("f1", entry_order.client_order_id, "SPY", Side.BUY, entry_order.qty, 501.0, 0.0, START + 13 * MINUTE)
    filled = apply_fills(state, [fill], {entry_order.client_order_id: entry_order}, CONFIG, fill.ts_event).state
    held = forget_orders(filled, [entry_order.client_order_id])  # the order is final: the position remains

    def entries(state: EngineState) -> int:
        now = START + 14 * MINUTE
        snapshot = snapshot_at(now, PRICES)
        result = run_cycle(
            snapshot, Book(100_000.0), state, CONFIG, now, strategies=strategies, is_tradable=always, calendar=CALENDAR
        )
        return len(result.entries)

    assert entries(held) == 0
    # Another strategy's position in the same direction is not this strategy's view.
    assert entries(replace(held, positions=tuple(replace(p, strategy="macro_event") for p in held.positions))) == 1
    assert entries(replace(held, positions=())) == 1  # closed: the view may be entered again


def test_the_kill_switch_halts_entries_but_not_exits() -> None:
    state = cycles(3)[-1].state
    entry_order = cycles(3)[-1].entries[0]
    [(client_id, proposal)] = state.pending_entries.items()
    fill = Fill("f1", client_id, "SPY", Side.BUY, entry_order.qty, proposal.entry, 0.0, proposal.ts_event)
    state = apply_fills(state, [fill], {client_id: entry_order}, CONFIG, fill.ts_event).state
    # The book lost 6% of the day's starting equity elsewhere: more than the 5% daily limit.
    book = Book(94_000.0)
    now = START + 16 * MINUTE
    crash = {"SPY": [*PRICES["SPY"][:14], proposal.stop * 0.99, proposal.stop * 0.98]}
    result = run_cycle(
        snapshot_at(now, crash), book, state, CONFIG, now, strategies=STRATEGIES, is_tradable=always, calendar=CALENDAR
    )
    assert result.trading_state is TradingState.HALTED
    assert [e.event for e in result.risk_events] == ["HALTED"]
    assert result.entries == ()
    assert all(not d.approved and ReasonCode.KILL_SWITCH in d.codes for d in result.decisions)
    assert [o.intent for o in result.orders] == ["exit"]


def test_an_entry_filled_in_two_parts_manages_the_whole_quantity_at_the_average_price() -> None:
    state = cycles(3)[-1].state
    entry_order = cycles(3)[-1].entries[0]
    [(client_id, proposal)] = state.pending_entries.items()
    first = entry_order.qty * 0.4
    part = Fill("f1", client_id, "SPY", Side.BUY, first, 500.0, 0.0, proposal.ts_event + MINUTE)
    rest = Fill("f2", client_id, "SPY", Side.BUY, entry_order.qty - first, 502.0, 0.0, proposal.ts_event + 2 * MINUTE)
    state = apply_fills(state, [part], {client_id: entry_order}, CONFIG, part.ts_event).state
    state = apply_fills(state, [rest], {client_id: entry_order}, CONFIG, rest.ts_event).state
    [position] = state.positions
    assert position.qty == pytest.approx(entry_order.qty)
    assert position.entry == pytest.approx(0.4 * 500.0 + 0.6 * 502.0)


def test_trade_pnl_pays_both_legs_fees_so_a_flat_book_gained_exactly_the_trades_pnl() -> None:
    """Entry in two parts, exit in two parts, each fill with its fee: the trades' P&L is the cash made."""
    state = cycles(3)[-1].state
    entry_order = cycles(3)[-1].entries[0]
    [(client_id, proposal)] = state.pending_entries.items()
    qty = entry_order.qty
    book = Book(100_000.0)
    t = proposal.ts_event
    entries = [
        Fill("e1", client_id, "SPY", Side.BUY, 0.4 * qty, 500.0, 0.20, t + MINUTE),
        Fill("e2", client_id, "SPY", Side.BUY, 0.6 * qty, 502.0, 0.31, t + 2 * MINUTE),
    ]
    for fill in entries:
        book.apply_fill(fill)
        state = apply_fills(state, [fill], {client_id: entry_order}, CONFIG, fill.ts_event).state

    exit_order = replace(entry_order, client_order_id="x", side=Side.SELL, intent="exit", trade_id=client_id)
    exit_order = replace(exit_order, reason="target")
    closed = []
    for fill in (
        Fill("x1", "x", "SPY", Side.SELL, 0.25 * qty, 510.0, 0.13, t + 9 * MINUTE),
        Fill("x2", "x", "SPY", Side.SELL, 0.75 * qty, 508.0, 0.38, t + 10 * MINUTE),
    ):
        book.apply_fill(fill)
        outcome = apply_fills(state, [fill], {"x": exit_order}, CONFIG, fill.ts_event)
        state = outcome.state
        closed.extend(outcome.closed)
    assert state.positions == () and book.holdings() == {}
    assert sum(trade.pnl for trade in closed) == pytest.approx(book.cash - 100_000.0, abs=1e-9)
    assert sum(trade.fees for trade in closed) == pytest.approx(0.51 + 0.13 + 0.38)
    # The first part carried a quarter of the entry fees; R (and so the strategy's statistics) is net of them.
    first = closed[0]
    assert first.fees == pytest.approx(0.25 * 0.51 + 0.13)
    assert first.realized_r == pytest.approx(first.pnl / (0.25 * qty * proposal.risk_per_unit))
    assert state.performance["cross_asset"].recent_r == (first.realized_r, closed[1].realized_r)


def test_a_reconcile_close_charges_the_entry_fees_the_position_carries() -> None:
    state = cycles(3)[-1].state
    entry_order = cycles(3)[-1].entries[0]
    [(client_id, proposal)] = state.pending_entries.items()
    fill = Fill("f1", client_id, "SPY", Side.BUY, entry_order.qty, 500.0, 0.4, proposal.ts_event)
    state = forget_orders(
        apply_fills(state, [fill], {client_id: entry_order}, CONFIG, fill.ts_event).state, [client_id]
    )
    outcome = reconcile_positions(state, {}, {"SPY": 501.0}, frozenset(), START + 30 * MINUTE)
    [closed] = outcome.closed
    assert closed.pnl == pytest.approx(1.0 * entry_order.qty - 0.4)
    assert closed.fees == pytest.approx(0.4)


def test_reconciliation_closes_what_the_broker_no_longer_holds_and_leaves_an_excess_unmanaged() -> None:
    state = cycles(3)[-1].state
    entry_order = cycles(3)[-1].entries[0]
    [(client_id, proposal)] = state.pending_entries.items()
    fill = Fill("f1", client_id, "SPY", Side.BUY, entry_order.qty, 500.0, 0.0, proposal.ts_event)
    state = forget_orders(
        apply_fills(state, [fill], {client_id: entry_order}, CONFIG, fill.ts_event).state, [client_id]
    )
    now = START + 30 * MINUTE

    agreed = reconcile_positions(state, {"SPY": entry_order.qty}, {"SPY": 501.0}, frozenset(), now)
    assert agreed.differences == () and agreed.closed == () and agreed.state == state

    # Someone sold a third at the broker; the other side holds TLT that HYDRA never bought.
    held = entry_order.qty * 2 / 3
    outcome = reconcile_positions(state, {"SPY": held, "TLT": 10.0}, {"SPY": 501.0}, frozenset(), now)
    [closed] = outcome.closed
    assert closed.reason is ExitReason.RECONCILE and closed.position.qty == pytest.approx(entry_order.qty / 3)
    assert closed.exit_price == 501.0
    [position] = outcome.state.positions
    assert position.qty == pytest.approx(held)
    assert [(d.symbol, d.broker_qty) for d in outcome.differences] == [("SPY", held), ("TLT", 10.0)]
    assert "unmanaged" in outcome.differences[1].resolution

    # An order still working on SPY explains any difference: nothing is touched until it ends.
    waiting = reconcile_positions(state, {}, {}, frozenset({"SPY"}), now)
    assert waiting.state == state and waiting.differences == ()


def spy_long(trade_id: str, qty: float, entry: float, opened_at: datetime, entry_fees: float = 0.0) -> ManagedPosition:
    proposal = TradeProposal(
        strategy="cross_asset",
        symbol="SPY",
        side=Side.BUY,
        entry=entry,
        stop=entry * 0.99,
        target=entry * 1.02,
        horizon=timedelta(hours=4),
        confidence=0.7,
        signal_ids=(),
        ts_event=opened_at,
    )
    return open_position(proposal, trade_id, qty, entry, opened_at, entry_fees)


def test_a_hand_close_is_reconciled_at_the_broker_s_fills_in_parts_newest_first() -> None:
    older = spy_long("older", 10.0, 500.0, START, entry_fees=1.0)
    newer = spy_long("newer", 6.0, 502.0, START + MINUTE)
    state = EngineState(positions=(newer, older))
    now = START + 30 * MINUTE

    def sell(fill_id: str, qty: float, price: float, minute: int, side: Side = Side.SELL) -> Fill:
        return Fill(fill_id, "manual", "SPY", side, qty, price, 0.01 * qty, START + minute * MINUTE)

    # By hand: 4 sold at 510, then 8 at 505 (newest); a buy, and a TLT sale, explain nothing of SPY's long.
    fills = [sell("a", 4.0, 510.0, 10), sell("b", 8.0, 505.0, 20), sell("c", 1.0, 400.0, 25, Side.BUY)]
    fills.append(replace(sell("d", 9.0, 90.0, 26), symbol="TLT"))
    outcome = reconcile_positions(state, {"SPY": 4.0}, {"SPY": 499.0}, frozenset(), now, fills)

    parts = [(t.position.trade_id, t.position.qty, t.exit_price, t.exit_ts, t.rest is None) for t in outcome.closed]
    assert parts == [
        ("newer", 6.0, 505.0, START + 20 * MINUTE, True),
        ("older", 2.0, 505.0, START + 20 * MINUTE, False),
        ("older", 4.0, 510.0, START + 10 * MINUTE, False),
    ]
    older_parts = outcome.closed[1:]
    assert [t.pnl for t in older_parts] == [
        pytest.approx(5.0 * 2.0 - 0.2 - 0.02),  # its share of the entry fees and of the fill's fee
        pytest.approx(10.0 * 4.0 - 0.4 - 0.04),
    ]
    [rest] = outcome.state.positions
    assert (rest.trade_id, rest.qty, rest.entry_fees) == ("older", pytest.approx(4.0), pytest.approx(0.4))
    [difference] = outcome.differences
    assert difference.resolution == "broker wins: managed qty 12 closed as 'reconcile'"

    # The rest goes with no new fill (those already weighed close nothing twice): the last price, said so.
    gone = reconcile_positions(outcome.state, {}, {"SPY": 499.0}, frozenset(), now + MINUTE, fills[:2])
    [last] = gone.closed
    assert (last.exit_price, last.exit_ts, last.position.qty) == (499.0, now + MINUTE, pytest.approx(4.0))
    assert gone.differences[0].resolution.endswith("4 of it at the last price, no fill at the broker explaining it")


def test_a_standing_difference_is_reported_when_it_appears_or_changes_only() -> None:
    state = EngineState(positions=(spy_long("t", 10.0, 500.0, START),))
    now = START + 30 * MINUTE
    reported = []
    for held in ({"SPY": 10.0, "TLT": 5.0}, {"SPY": 10.0, "TLT": 5.0}, {"SPY": 12.0, "TLT": 5.0}, {"SPY": 12.0}):
        outcome = reconcile_positions(state, held, {}, frozenset(), now)
        state = outcome.state
        reported.append([(d.symbol, d.managed_qty, d.broker_qty) for d in outcome.differences])
        now += MINUTE
    assert reported == [[("TLT", 0.0, 5.0)], [], [("SPY", 10.0, 12.0)], []]
    assert state.standing_differences == {"SPY": (10.0, 12.0)}
    # Once it agrees again it is forgotten: the same excess later is new.
    state = reconcile_positions(state, {"SPY": 10.0}, {}, frozenset(), now).state
    assert state.standing_differences == {}
    again = reconcile_positions(state, {"SPY": 12.0}, {}, frozenset(), now + MINUTE)
    assert [d.broker_qty for d in again.differences] == [12.0]


def test_unfilled_entries_are_forgotten() -> None:
    state = cycles(3)[-1].state
    assert forget_orders(state, list(state.pending_entries)).pending_entries == {}


def test_a_stop_crossed_between_two_cycles_exits_even_if_the_latest_bar_recovered() -> None:
    results = cycles(3)
    state, entry_order = results[-1].state, results[-1].entries[0]
    [(client_id, proposal)] = state.pending_entries.items()
    fill = Fill("f1", client_id, "SPY", Side.BUY, entry_order.qty, proposal.entry, 0.0, proposal.ts_event)
    state = apply_fills(state, [fill], {client_id: entry_order}, CONFIG, fill.ts_event).state
    # Five minutes pass before the next cycle: the third of them dips through the stop, the last recovers.
    recovered = [
        *PRICES["SPY"][:14],
        proposal.entry,
        proposal.entry,
        proposal.stop * 0.99,
        proposal.entry,
        proposal.entry,
    ]
    now = START + 19 * MINUTE
    result = run_cycle(
        snapshot_at(now, {"SPY": recovered}),
        Book(100_000.0),
        state,
        CONFIG,
        now,
        strategies=STRATEGIES,
        is_tradable=always,
        calendar=CALENDAR,
    )
    [exit_order] = [o for o in result.orders if o.intent == "exit"]
    assert exit_order.reason == "stop" and exit_order.decision_price == proposal.stop
    assert result.state.last_cycle_at == now


# --- exits and market hours: SPY trades 14:30-21:00 UTC on Monday 2 March 2026 (09:30-16:00 New York)

CLOSE = START + timedelta(hours=6, minutes=30)
NEXT_OPEN = START + timedelta(days=1)
QUARTER = timedelta(minutes=15)


def two_sessions(closes: Sequence[float] | None = None) -> pl.DataFrame:
    """SPY's minute bars of the session (at 500 unless `closes` are given) and of the next one at 500."""
    first = list(closes) if closes is not None else [500.0] * 390
    return pl.concat([bar_frame({"SPY": first}), bar_frame({"SPY": [500.0] * 390}, start=NEXT_OPEN)])


def held(horizon: timedelta, opened_at: datetime = CLOSE - timedelta(hours=1)) -> ManagedPosition:
    proposal = TradeProposal(
        strategy="cross_asset",
        symbol="SPY",
        side=Side.BUY,
        entry=500.0,
        stop=495.0,
        target=510.0,
        horizon=horizon,
        confidence=0.7,
        signal_ids=(),
        ts_event=opened_at,
    )
    return open_position(proposal, "t1", 6.0, 500.0, opened_at, entry_fees=0.3)


def cycle_at(now: datetime, state: EngineState, bars: pl.DataFrame) -> CycleResult:
    snapshot = MarketSnapshot(as_of=now, tables={"bars": bars.filter(pl.col("ts_ingested") <= now)})
    return run_cycle(
        snapshot, Book(100_000.0), state, CONFIG, now, strategies=(), is_tradable=CALENDAR.is_open, calendar=CALENDAR
    )


def test_a_time_exit_due_after_the_close_is_taken_at_the_last_cycle_before_the_close() -> None:
    bars = two_sessions()
    # Cycles every 15 minutes; the deadline, 18:00 New York, falls after the 16:00 close.
    state = EngineState(positions=(held(timedelta(hours=3)),), last_cycle_at=CLOSE - 2 * QUARTER)
    last = cycle_at(CLOSE - QUARTER, state, bars)
    [exit_order] = last.orders
    assert (exit_order.intent, exit_order.reason, exit_order.qty) == ("exit", "time", 6.0)
    # Earlier in the session it waits for that last cycle; a deadline in the next session's hours waits for it.
    early = EngineState(positions=(held(timedelta(hours=3)),), last_cycle_at=CLOSE - 4 * QUARTER)
    assert cycle_at(CLOSE - 3 * QUARTER, early, bars).orders == ()
    tomorrow = EngineState(positions=(held(timedelta(hours=20)),), last_cycle_at=CLOSE - 2 * QUARTER)
    assert cycle_at(CLOSE - QUARTER, tomorrow, bars).orders == ()


def test_an_exit_decided_while_the_market_is_closed_is_sent_at_the_next_open_not_before() -> None:
    # The stop is crossed at 15:50 New York; the next cycle, at the close, finds the market closed.
    closes = [500.0] * 390
    closes[380] = 490.0
    bars = two_sessions(closes)
    state = EngineState(positions=(held(timedelta(days=3)),), last_cycle_at=CLOSE - QUARTER)
    at_close = cycle_at(CLOSE, state, bars)
    assert at_close.orders == ()
    overnight = cycle_at(CLOSE + 4 * QUARTER, at_close.state, bars)
    assert overnight.orders == ()
    # The price recovered by the open, but the stop was crossed: the exit goes out then.
    [exit_order] = cycle_at(NEXT_OPEN + QUARTER, overnight.state, bars).orders
    assert (exit_order.reason, exit_order.decision_price, exit_order.qty) == ("stop", 495.0, 6.0)


def test_no_second_exit_while_one_works_and_an_exit_that_ended_unfilled_is_sent_again() -> None:
    bars = two_sessions()
    state = EngineState(positions=(held(timedelta(minutes=30), opened_at=START),), last_cycle_at=START + 40 * MINUTE)
    first = cycle_at(START + 41 * MINUTE, state, bars)
    [exit_order] = first.orders
    assert exit_order.reason == "time"
    part = Fill("x1", exit_order.client_order_id, "SPY", Side.SELL, 2.0, 500.0, 0.1, START + 41 * MINUTE)
    state = apply_fills(first.state, [part], {exit_order.client_order_id: exit_order}, CONFIG, part.ts_event).state
    working = cycle_at(START + 42 * MINUTE, state, bars)
    assert working.orders == ()  # the exit order still works for the other 4
    # It expires with 4 unfilled: the exit is still decided, and goes out again for what is held.
    ended = forget_orders(working.state, [exit_order.client_order_id])
    [again] = cycle_at(START + 43 * MINUTE, ended, bars).orders
    assert (again.reason, again.qty, again.trade_id) == ("time", 4.0, "t1")
    assert again.client_order_id != exit_order.client_order_id


def test_an_entry_counts_as_a_trade_once_the_broker_accepts_it_and_a_refused_one_spends_nothing() -> None:
    """Issue 16, defect 2: the day's trade count grew at approval, refused orders included."""
    result = cycles(3)[-1]
    [entry] = result.entries
    assert result.state.risk is not None and result.state.risk.trades_today == 0
    accepted = settle_submissions(result.state, [entry.client_order_id], {})
    assert accepted.risk is not None and accepted.risk.trades_today == 1
    assert entry.client_order_id in accepted.pending_entries  # its fills are still to come
    refused = settle_submissions(result.state, [], {entry.client_order_id: None})
    assert refused.risk is not None and refused.risk.trades_today == 0
    assert refused.pending_entries == {} and refused.refused_views == ()


class EntersOnceForTenMinutes(EntersOnce):
    """EntersOnce with a view whose trade would last ten minutes."""

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        output = super().evaluate(context)
        return replace(output, proposals=tuple(replace(p, horizon=10 * MINUTE) for p in output.proposals))


def test_a_view_refused_for_good_is_not_proposed_again_until_it_ends() -> None:
    strategies = (EntersOnceForTenMinutes(),)
    decided = cycles(3, strategies)[-1]
    [entry] = decided.entries
    refused_at = decided.now

    def entries_at(state: EngineState, minutes: int) -> tuple[int, EngineState]:
        now = refused_at + minutes * MINUTE
        result = run_cycle(
            snapshot_at(now, PRICES),
            Book(100_000.0),
            state,
            CONFIG,
            now,
            strategies=strategies,
            is_tradable=always,
            calendar=CALENDAR,
        )
        return len(result.entries), result.state

    lasting = settle_submissions(decided.state, [], {entry.client_order_id: "not_shortable"})
    assert lasting.refused_views == (
        RefusedView("cross_asset", "SPY", Side.BUY, "not_shortable", refused_at + 10 * MINUTE),
    )
    state = lasting
    for minutes in range(1, 10):
        count, state = entries_at(state, minutes)
        assert count == 0, f"proposed again {minutes} minutes after a lasting refusal"
    count, state = entries_at(state, 10)  # the refused proposal's horizon is over: a new view
    assert count == 1
    assert state.refused_views == ()

    passing = settle_submissions(decided.state, [], {entry.client_order_id: None})
    assert entries_at(passing, 1)[0] == 1  # a refusal that may pass later (a closed market) is tried again
