"""Risk invariants over random sequences of cycles: proposals, price moves, fills, exits.

Each example replays up to 25 cycles on a 100_000 book (with random carried-over
holdings) over eight symbols (two of them crypto) with a random profile, optionally
tightened so the kill switch and the trade cap are reached often, and with market-wide
shocks. The checks recompute every limit from the book as it stood when the decisions
were made, independently of the risk manager's own bookkeeping:

* no approval breaches the position, asset or total-exposure limit, counting the
  approvals before it in the same cycle and the entries an earlier cycle left working
  (approvals that did not fill work one more cycle, then fill or are cancelled);
* no crypto sell exceeds the quantity held less the sells working, and the book is never
  short crypto, whichever approvals fill;
* an equity short is a whole number of shares;
* approvals per UTC day never exceed the trade cap;
* once the day's loss has reached the limit, no entry is approved until the next day,
  whatever the equity does afterwards.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.book import Book, Holding
from core.config import RiskConfig, RiskProfile, is_crypto
from core.risk import RiskManager, RiskState, WorkingOrder
from core.sizing import TradeStats
from core.types import Fill, RiskDecision, Side, TradeProposal

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SYMBOLS = ("SPY", "QQQ", "TLT", "GLD", "IWM", "HYG", "BTC/USD", "ETH/USD")
START_PRICES = (400.0, 350.0, 90.0, 180.0, 200.0, 75.0, 60_000.0, 3_000.0)
STRATEGIES = ("fresh", "good", "bad")
STATS = {
    "good": TradeStats.from_r_multiples([2.0] * 12 + [-1.0] * 8),
    "bad": TradeStats.from_r_multiples([1.0] * 9 + [-1.0] * 21),
}
SLIPPAGE = 0.001
# Float slack for comparing a cut size with the limit it was cut to.
REL_TOL = 1e-9


@dataclass(frozen=True)
class ProposalSpec:
    symbol: int
    strategy: int
    side: Side
    confidence: float
    stop_pct: float
    reward_risk: float


@dataclass(frozen=True)
class Cycle:
    minutes: int
    returns: tuple[float, ...]
    shock: float  # a move of every symbol at once, so a carried book can lose its day
    proposals: tuple[ProposalSpec, ...]
    fills: tuple[bool, ...]
    exits: tuple[int, ...]
    closed_outcomes: tuple[bool, ...]  # extra closed trades: True is a loss
    not_tradable: frozenset[int]
    vol: float | None


proposal_specs = st.builds(
    ProposalSpec,
    symbol=st.integers(0, len(SYMBOLS) - 1),
    strategy=st.integers(0, len(STRATEGIES) - 1),
    side=st.sampled_from(Side),
    confidence=st.floats(0.1, 1.0),
    stop_pct=st.floats(0.005, 0.1),
    reward_risk=st.floats(0.5, 4.0),
)

cycles = st.builds(
    Cycle,
    minutes=st.integers(1, 4 * 60),
    returns=st.tuples(*[st.floats(-0.15, 0.15)] * len(SYMBOLS)),
    shock=st.one_of(st.just(0.0), st.floats(-0.3, 0.3)),
    proposals=st.lists(proposal_specs, max_size=8).map(tuple),
    fills=st.lists(st.booleans(), min_size=1, max_size=6).map(tuple),
    exits=st.lists(st.integers(0, len(SYMBOLS) - 1), max_size=2).map(tuple),
    closed_outcomes=st.lists(st.booleans(), max_size=2).map(tuple),
    not_tradable=st.frozensets(st.integers(0, len(SYMBOLS) - 1), max_size=2),
    vol=st.one_of(st.none(), st.floats(0.002, 0.08)),
)

# Carried-over holdings as signed fractions of equity (crypto only long): the kill switch
# needs exposure from the first cycle, and a carried book may exceed today's limits.
opening_books = st.dictionaries(st.integers(0, len(SYMBOLS) - 1), st.floats(-0.1, 0.1), max_size=len(SYMBOLS))

configs = st.builds(
    RiskConfig,
    profile=st.sampled_from(RiskProfile),
    max_daily_loss=st.sampled_from([None, 0.01, 0.02]),
    max_trades_per_day=st.sampled_from([None, 3, 8]),
)


def make_proposal(spec: ProposalSpec, price: float, now: datetime) -> TradeProposal:
    sign = spec.side.sign
    return TradeProposal(
        strategy=STRATEGIES[spec.strategy],
        symbol=SYMBOLS[spec.symbol],
        side=spec.side,
        entry=price,
        stop=price * (1 - sign * spec.stop_pct),
        target=price * (1 + sign * spec.stop_pct * spec.reward_risk),
        horizon=timedelta(hours=2),
        confidence=spec.confidence,
        signal_ids=(),
        ts_event=now,
    )


def fill_for(fill_id: str, symbol: str, side: Side, qty: float, price: float, now: datetime) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=fill_id,
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        fee=qty * price * SLIPPAGE,
        ts_event=now,
    )


def check_limits(config: RiskConfig, book: Book, approved: list[RiskDecision], working: list[WorkingOrder]) -> None:
    limits = config.limits
    equity = book.equity
    slack = REL_TOL * abs(equity)
    gross = book.gross_exposure
    by_symbol: defaultdict[str, float] = defaultdict(float)
    held = {s: book.qty(s) for s in SYMBOLS}
    for order in working:  # every one an entry
        notional = order.qty * (book.last_price(order.symbol) or order.price)
        by_symbol[order.symbol] += notional
        gross += notional
        if order.side is Side.SELL:
            held[order.symbol] -= order.qty
    for decision in approved:
        symbol = decision.proposal.symbol
        if decision.proposal.side is Side.SELL and not is_crypto(symbol):
            assert decision.qty == int(decision.qty)
        assert decision.notional <= limits.max_position * equity + slack
        by_symbol[symbol] += decision.notional
        assert book.exposure(symbol) + by_symbol[symbol] <= limits.max_asset * equity + slack
        gross += decision.notional
        assert gross <= limits.max_total_exposure * equity + slack
        if is_crypto(symbol) and decision.proposal.side is Side.SELL:
            held[symbol] -= decision.qty
            assert held[symbol] >= -REL_TOL * decision.qty


@settings(max_examples=300, deadline=None)
@given(config=configs, opening=opening_books, script=st.lists(cycles, min_size=1, max_size=25))
def test_limits_trade_cap_and_kill_switch_hold(
    config: RiskConfig, opening: dict[int, float], script: list[Cycle]
) -> None:
    limits = config.limits
    closed_symbols: set[str] = set()
    risk = RiskManager(config=config, is_tradable=lambda symbol, now: symbol not in closed_symbols)
    prices = dict(zip(SYMBOLS, START_PRICES, strict=True))
    holdings = {}
    for i, fraction in opening.items():
        symbol = SYMBOLS[i]
        signed = abs(fraction) if is_crypto(symbol) else fraction
        if signed:
            holdings[symbol] = Holding(signed * 100_000.0 / prices[symbol], prices[symbol])
    cash = 100_000.0 - sum(h.qty * h.avg_price for h in holdings.values())
    book = Book(cash, holdings=holdings, marks=prices)
    now = T0
    state: RiskState = risk.initial_state(now, book.equity)
    day: date = now.date()
    day_start_equity = book.equity
    loss_limit_hit: set[date] = set()
    approvals_per_day: Counter[date] = Counter()
    working: list[WorkingOrder] = []

    def note_loss(equity: float) -> None:
        if day_start_equity - equity >= limits.max_daily_loss * day_start_equity * (1 + REL_TOL):
            loss_limit_hit.add(day)

    for n, cycle in enumerate(script):
        now += timedelta(minutes=cycle.minutes)
        for symbol, move in zip(SYMBOLS, cycle.returns, strict=True):
            prices[symbol] *= (1 + move) * (1 + cycle.shock)
        book.mark_all(prices)
        closed_symbols.clear()
        closed_symbols.update(SYMBOLS[i] for i in cycle.not_tradable)

        # Exits bypass the risk manager; their P&L feeds the losing streak.
        for i in cycle.exits:
            symbol = SYMBOLS[i]
            qty = book.qty(symbol)
            if qty > 0:  # as at the broker, what working sells hold cannot be sold again
                qty = max(0.0, qty - sum(o.qty for o in working if o.symbol == symbol and o.side is Side.SELL))
            if qty:
                side = Side.SELL if qty > 0 else Side.BUY
                pnl = book.apply_fill(fill_for(f"x{n}-{i}", symbol, side, abs(qty), prices[symbol], now))
                state = risk.record_trade_close(state, now, pnl).state
        for loss in cycle.closed_outcomes:
            state = risk.record_trade_close(state, now, -1.0 if loss else 1.0).state

        if now.date() != day:
            day, day_start_equity = now.date(), book.equity
        note_loss(book.equity)

        proposals = [make_proposal(spec, prices[SYMBOLS[spec.symbol]], now) for spec in cycle.proposals]
        vol = {} if cycle.vol is None else dict.fromkeys(SYMBOLS, cycle.vol)
        evaluation = risk.evaluate(proposals, state, book, now, stats=STATS, realized_vol=vol, working=working)
        assert len(evaluation.decisions) == len(proposals)
        approved = [d for d in evaluation.decisions if d.approved]

        check_limits(config, book, approved, working)
        approvals_per_day[day] += len(approved)
        assert approvals_per_day[day] <= limits.max_trades_per_day
        if day in loss_limit_hit:
            assert not approved, f"entry approved on {day} after the daily loss limit"

        # Every approval accepted by the broker: the most the trade count can grow.
        state = evaluation.state.count_trades(len(approved))
        # Entries an earlier cycle left working fill now, or are cancelled; this cycle's unfilled ones work on.
        for k, order in enumerate(working):
            if cycle.fills[k % len(cycle.fills)]:
                price = prices[order.symbol] * (1 + order.side.sign * SLIPPAGE)
                book.apply_fill(fill_for(f"w{n}-{k}", order.symbol, order.side, order.qty, price, now))
        working = []
        for k, (decision, filled) in enumerate(zip(approved, cycle.fills * len(approved), strict=False)):
            proposal = decision.proposal
            if filled:
                side = proposal.side
                price = proposal.entry * (1 + side.sign * SLIPPAGE)
                book.apply_fill(fill_for(f"e{n}-{k}", proposal.symbol, side, decision.qty, price, now))
            else:
                working.append(WorkingOrder(proposal.symbol, proposal.side, "entry", decision.qty, proposal.entry))
        assert all(book.qty(s) >= -REL_TOL for s in SYMBOLS if is_crypto(s))
        note_loss(book.equity)
        state = risk.mark_to_market(state, now, book.equity).state
