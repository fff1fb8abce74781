"""A paper session against a misbehaving Alpaca (tests/fake_market.py), minute by minute through
the close, with the broker's invariants checked after every cycle.

Each cycle is what a run of the minutely trading flow does: a session resumed from the warehouse
(every flow run is a fresh process), the broker's unrecorded orders adopted, one step. The fake
market fills orders wholly or in parts, a person closes or halves positions by hand, CME posts
metals margin hikes (precious_metals proposes shorts on them), and every route answers now and
then with a 429, a 500, an answer slower than the client's timeout or, for an order, a duplicate-id
422 after accepting it. After every cycle:

- positions: the broker holds what HYDRA manages plus the declared unmanaged holdings (symbols
  with an order still working are left until it ends: their fills are still arriving);
- orders: every order Alpaca accepted from HYDRA has exactly one record and all its fills;
- trade limit: trades_today counts the entries the broker accepted, once HYDRA has heard so, and
  never one refused or never sent;
- P&L: sql/checks/pnl_not_reconciled.sql is empty, and the broker's own equity change equals the
  trades' P&L plus the open positions' at the broker's marks;
- no strategy holds one view twice (sql/checks/views_entered_twice.sql);
- the cycle completed: no failure may end the session.

The default suite runs HYDRA_PAPER_SOAK_CYCLES (120) minutes, ending 20 minutes after the close;
`make soak` runs 420, from before the open.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar

import polars as pl
import pytest
from fake_alpaca import API_KEY, SECRET_KEY
from fake_market import CLOSE, OPEN, FakeMarket, FaultPlan, RandomWalk, hydra_orders, iso
from paper_session import RUN
from pytest_httpserver import HTTPServer

from adapters.alpaca_broker import AlpacaBroker
from adapters.broker import FINAL_STATUSES
from core.calendar import Timeframe
from core.config import EngineConfig, RegimeConfig, RiskConfig, RiskProfile
from core.snapshot import MarketSnapshot
from core.strategy import Strategy, StrategyContext, StrategyOutput
from core.types import Regime, Side, Signal, TradeProposal
from hydra.context import market_calendar
from hydra.trading import TradingSession, resume_state
from strategies.precious_metals import PreciousMetalsFlow
from warehouse import Warehouse
from warehouse.sqlfiles import read_sql

CYCLES = int(os.environ.get("HYDRA_PAPER_SOAK_CYCLES", "120"))
SEED = int(os.environ.get("HYDRA_PAPER_SOAK_SEED", "16"))
MINUTE = timedelta(minutes=1)
# The aggressive profile's four losses before a cooldown and fifty trades a day keep a session trading.
CONFIG = EngineConfig(regime=RegimeConfig(observation_cycles=0), risk=RiskConfig(profile=RiskProfile.AGGRESSIVE))
END = CLOSE + 20 * MINUTE
STARTS = {"SPY": 512.0, "QQQ": 441.0, "GLD": 243.0, "SLV": 31.0, "GDX": 46.0}
TRADED = tuple(STARTS)
UNMANAGED = MappingProxyType({"AAPL": (10.0, 180.0)})  # held before HYDRA ran; its price stays put
CASH = 100_000.0
CLIENT_TIMEOUT_S = 0.5
FAULT_RATE = 0.06
MANUAL_CLOSE_CHANCE = 1 / 30  # per minute of the session
INSTANT_FILL_CHANCE = 0.3  # a market order filled before the answer reaches HYDRA
MARGIN_HIKE_CHANCE = 1 / 60  # per minute of the session
QTY_TOLERANCE = 1e-6
CENT = 0.01
FINAL = [status.value for status in FINAL_STATUSES]


class Foresight:
    """Trades SPY and QQQ both ways, knowing the walk's next minutes: it goes the way the price is
    about to go, with a target the price reaches before the stop, so most trades win and no losing
    streak cools the run down for hours. Each symbol every twelve minutes at most (SPY on the
    hour's multiples of 12, QQQ six minutes later), with a 15-minute horizon, so entries and exits
    of both sides come all session long."""

    name: ClassVar[str] = "cross_asset"
    symbols: ClassVar[tuple[str, ...]] = ("SPY", "QQQ")
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"bars": timedelta(minutes=5)})
    overrides_regime: ClassVar[bool] = True
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.DAY_1
    every: ClassVar[int] = 12
    horizon: ClassVar[timedelta] = timedelta(minutes=15)

    def __init__(self, walk: RandomWalk) -> None:
        self.walk = walk

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        signals, proposals = [], []
        for offset, symbol in enumerate(self.symbols):
            if (context.now.minute - offset * self.every // 2) % self.every:
                continue
            bars = context.snapshot.closed_bars(symbol, context.now)
            ahead = self.walk.ahead(symbol, context.now, int(self.horizon / MINUTE))
            if not bars.size or len(ahead) < 5 or {(symbol, Side.BUY), (symbol, Side.SELL)} & context.entered:
                continue
            price = float(bars.close[-1])
            side = Side.BUY if max(ahead) - price >= price - min(ahead) else Side.SELL
            best = ahead.index(max(ahead) if side is Side.BUY else min(ahead))
            reward = 0.6 * abs(ahead[best] - price)
            # The worst price (a bar's low or high, 0.1% off its close) met before the target is.
            worst = min(ahead[: best + 1]) * 0.999 if side is Side.BUY else max(ahead[: best + 1]) * 1.001
            risk = max(0.8 * reward, abs(price - worst) + 0.0005 * price)
            if reward < 0.001 * price:
                continue
            signal = Signal(self.name, symbol, 0.6 * side.sign, 0.8, "test", context.now, self.horizon)
            signals.append(signal)
            proposals.append(
                TradeProposal(
                    strategy=self.name,
                    symbol=symbol,
                    side=side,
                    entry=price,
                    stop=price - side.sign * risk,
                    target=price + side.sign * reward,
                    horizon=self.horizon,
                    confidence=0.9,
                    signal_ids=(signal.signal_id,),
                    ts_event=context.now,
                )
            )
        return StrategyOutput(signals=tuple(signals), proposals=tuple(proposals))


class MetalsOnMarginHikes(PreciousMetalsFlow):
    """precious_metals as it is, serving every regime: a soak of one session has no regime model."""

    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    overrides_regime: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Violation:
    cycle: int
    at: datetime
    invariant: str
    detail: str


def margin_notices(hikes: list[tuple[datetime, str, float]]) -> pl.DataFrame:
    """CME maintenance-margin hikes as the cme feed stores them, each known when noticed."""
    return pl.DataFrame(
        [
            (f"soak:{product}:{at:%H%M}", product, "OUTRIGHT", "1", at.date(), at, "USD", change, "soak", at)
            for at, product, change in hikes
        ],
        schema={
            "notice_id": pl.Utf8,
            "product": pl.Utf8,
            "rate_type": pl.Utf8,
            "tier": pl.Utf8,
            "effective_date": pl.Date,
            "ts_event": pl.Datetime("us", "UTC"),
            "unit": pl.Utf8,
            "change_pct": pl.Float64,
            "source": pl.Utf8,
            "ts_ingested": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def record_paper_run(warehouse: Warehouse, starting_equity: float, started_at: datetime) -> None:
    """The run's row, as a paper session opens it; sql/checks/pnl_not_reconciled.sql measures the
    equity change from its starting cash, here the account's equity when the run began."""
    config = {"sim": {"starting_cash": starting_equity}, "engine": CONFIG.model_dump(mode="json")}
    with warehouse.connect() as con:
        con.execute(
            read_sql("record/run"),
            {
                "run_id": RUN,
                "parent_run_id": None,
                "mode": "paper",
                "label": "paper soak",
                "profile": CONFIG.risk.profile.value,
                "config": json.dumps(config),
                "limits": CONFIG.risk.limits.model_dump_json(),
                "window_start": None,
                "window_end": None,
                "started_at": started_at,
                "ended_at": None,
                "status": "running",
            },
        )


def one_cycle(
    warehouse: Warehouse, url: str, strategies: tuple[Strategy, ...], snapshot: MarketSnapshot, now: datetime
) -> None:
    """One run of the minutely trading flow, without Prefect: resume, adopt, step."""
    broker = AlpacaBroker(API_KEY, SECRET_KEY, url, timeout_s=CLIENT_TIMEOUT_S, max_retries=3, retry_wait_s=0.01)
    session = TradingSession.resume(warehouse, RUN, CONFIG, broker, strategies, market_calendar())
    # As the flow's tasks (tasks/trade.py) hold the warehouse: one connection for each.
    with warehouse.held():
        session.adopt_unrecorded_orders(now, now)
    with warehouse.held():
        session.step_and_record(snapshot, now, recorded_at=now)


def broken_invariants(
    warehouse: Warehouse, market: FakeMarket, starting_equity: float, unseen: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    """(invariant, what is wrong) for every invariant the session breaks after a cycle. `unseen`
    are the fills made during the cycle, after HYDRA read the orders: it learns of them next cycle."""
    broken: list[tuple[str, str]] = []
    client_ids = {order["id"]: client_id for client_id, order in market.orders.items()}
    unseen_qty: defaultdict[str, float] = defaultdict(float)
    unseen_position: defaultdict[str, float] = defaultdict(float)
    for activity in unseen:
        qty = float(activity["qty"])
        unseen_qty[client_ids[activity["order_id"]]] += qty
        unseen_position[activity["symbol"]] += qty if activity["side"] == "buy" else -qty
    state = resume_state(warehouse, RUN)
    with warehouse.connect(read_only=True) as con:
        records = dict(
            con.execute(
                "SELECT client_order_id, count(*) FROM orders WHERE run_id = $run_id GROUP BY 1", {"run_id": RUN}
            ).fetchall()
        )
        working = {
            symbol
            for (symbol,) in con.execute(
                "SELECT DISTINCT symbol FROM orders WHERE run_id = $run_id AND NOT list_contains($final, status)",
                {"run_id": RUN, "final": FINAL},
            ).fetchall()
        }
        entries = con.execute(
            "SELECT client_order_id, status, status_reason FROM orders WHERE run_id = $run_id AND intent = 'entry'",
            {"run_id": RUN},
        ).fetchall()
        filled = dict(
            con.execute(
                "SELECT client_order_id, sum(qty) FROM fills WHERE run_id = $run_id GROUP BY 1", {"run_id": RUN}
            ).fetchall()
        )
        (trades_pnl,) = con.execute(
            "SELECT coalesce(sum(pnl), 0) FROM trades WHERE run_id = $run_id", {"run_id": RUN}
        ).fetchall()[0]
        unreconciled = con.execute(read_sql("checks/pnl_not_reconciled"), {"run_id": RUN}).fetchall()
        twice = con.execute(read_sql("checks/views_entered_twice"), {"run_id": RUN}).fetchall()

    managed: dict[str, float] = {}
    for position in state.positions:
        managed[position.symbol] = managed.get(position.symbol, 0.0) + position.side.sign * position.qty
    for symbol in sorted((managed.keys() | market.held.keys()) - working):
        expected = managed.get(symbol, 0.0) + UNMANAGED.get(symbol, (0.0, 0.0))[0]
        held = (market.held[symbol].qty if symbol in market.held else 0.0) - unseen_position[symbol]
        if abs(held - expected) > QTY_TOLERANCE:
            broken.append(("positions", f"{symbol}: broker holds {held:g}, HYDRA manages {managed.get(symbol, 0.0):g}"))

    accepted = hydra_orders(market)
    for client_id, order in sorted(accepted.items()):
        if records.get(client_id, 0) != 1:
            broken.append(("orders", f"{client_id} ({order['status']}) has {records.get(client_id, 0)} records"))
        broker_filled = float(order["filled_qty"] or 0) - unseen_qty[client_id]
        if abs(filled.get(client_id, 0.0) - broker_filled) > QTY_TOLERANCE:
            broken.append(
                ("fills", f"{client_id}: broker filled {broker_filled:g}, recorded {filled.get(client_id, 0.0):g}")
            )

    # Accepted, and HYDRA has heard so: an entry whose answer is still unknown ('pending') counts
    # once it is found at the broker.
    counted = sum(1 for client_id, status, _ in entries if client_id in accepted and status != "pending")
    trades_today = state.risk.trades_today if state.risk is not None else 0
    if trades_today != counted:
        others = [f"{status}: {reason}" for client_id, status, reason in entries if client_id not in accepted]
        others += [f"pending at {client_id}" for client_id, status, _ in entries if status == "pending"]
        broken.append(
            ("trade limit", f"trades_today {trades_today}, entries the broker accepted {counted}; the others {others}")
        )

    if unreconciled:
        broken.append(("pnl_not_reconciled", str(unreconciled[0])))
    open_pnl = sum((market.price(p.symbol) - p.entry) * p.qty * p.side.sign - p.entry_fees for p in state.positions)
    change = market.equity() - starting_equity
    if abs(change - trades_pnl - open_pnl) > CENT:
        broken.append(("equity", f"broker equity change {change:.2f} != trades {trades_pnl:.2f} + open {open_pnl:.2f}"))
    if twice:
        broken.append(("views_entered_twice", str(twice[0])))
    return broken


def summary(violations: list[Violation], market: FakeMarket) -> str:
    """Per invariant: how often it broke, and its first breaches with the faults of their minute."""
    last = max((v.cycle for v in violations), default=None)
    lines = [
        f"{len(violations)} breaches: {dict(Counter(v.invariant for v in violations))}; still broken in the last"
        f" cycle: {dict(Counter(v.invariant for v in violations if v.cycle == last))}"
    ]
    for invariant in dict.fromkeys(v.invariant for v in violations):
        for violation in [v for v in violations if v.invariant == invariant][:3]:
            around = [
                f"{f.at:%H:%M} {f.kind} {f.method} {f.path}"
                for f in market.faults
                if violation.at - MINUTE <= f.at <= violation.at
            ]
            hands = [
                f"{c.symbol} {c.qty:+g}" for c in market.manual_closes if violation.at - MINUTE < c.at <= violation.at
            ]
            lines.append(
                f"cycle {violation.cycle} {violation.at:%H:%M} {invariant}: {violation.detail[:240]}"
                f" | faults this minute and the last: {around or 'none'} | closed by hand: {hands or 'none'}"
            )
    return "\n".join(lines)


def test_a_hand_close_comes_after_the_fill_of_the_position_it_closes(alpaca_server: HTTPServer) -> None:
    """A person acts half a minute before the cycle: an order that fills at the cycle was still
    working then, so its position cannot be closed by hand in that minute. Closing it anyway
    put a buy covering a short before the sell that opened it, a fill HYDRA rightly cannot
    weigh (it predates the trade), so the soak's P&L was off by the minute's price move."""
    market = FakeMarket(
        alpaca_server,
        RandomWalk(SEED, STARTS),
        seed=SEED,
        cash=CASH,
        unmanaged={},
        fill_chances=(1.0, 0.0),
        manual_close_chance=1.0,
    )
    market.advance(OPEN + MINUTE)
    market.put("order_accepted.json", "hy-short", symbol="QQQ", qty="11", side="sell", submitted_at=iso(OPEN + MINUTE))
    market.advance(OPEN + 2 * MINUTE, manual_close_symbols=("QQQ",))
    (short,) = [a for a in market.activities if a["order_id"] == market.orders["hy-short"]["id"]]
    assert short["side"] == "sell_short"
    assert market.manual_closes == []
    market.advance(OPEN + 3 * MINUTE, manual_close_symbols=("QQQ",))
    (hand,) = market.manual_closes
    assert hand.symbol == "QQQ"
    assert hand.at > datetime.fromisoformat(short["transaction_time"])


@pytest.mark.slow
def test_a_paper_session_with_random_faults_keeps_every_invariant_after_every_cycle(
    warehouse: Warehouse, alpaca_server: HTTPServer
) -> None:
    walk = RandomWalk(SEED, STARTS)
    market = FakeMarket(
        alpaca_server,
        walk,
        seed=SEED,
        cash=CASH,
        unmanaged=UNMANAGED,
        faults=FaultPlan(rate=FAULT_RATE, slow_s=CLIENT_TIMEOUT_S + 0.3),
        manual_close_chance=MANUAL_CLOSE_CHANCE,
        instant_fill_chance=INSTANT_FILL_CHANCE,
    )
    url = alpaca_server.url_for("").rstrip("/")
    strategies = (Foresight(walk), MetalsOnMarginHikes())
    now = END - CYCLES * MINUTE
    market.advance(now)
    starting_equity = market.equity()
    record_paper_run(warehouse, starting_equity, now)
    rng = random.Random(f"{SEED}:cme")
    hikes: list[tuple[datetime, str, float]] = []
    violations: list[Violation] = []
    for cycle in range(CYCLES):
        now += MINUTE
        market.advance(now, manual_close_symbols=TRADED)
        if OPEN <= now < CLOSE and rng.random() < MARGIN_HIKE_CHANCE:
            hikes.append((now, rng.choice(("GC", "SI")), round(rng.uniform(5.0, 25.0), 1)))
        snapshot = MarketSnapshot(as_of=now, tables={"bars": walk.bars(now), "margin_notices": margin_notices(hikes)})
        seen = len(market.activities)
        try:
            one_cycle(warehouse, url, strategies, snapshot, now)
        except Exception as error:  # the paper loop's contract: a failed cycle must not end the session
            violations.append(Violation(cycle, now, "cycle failed", f"{type(error).__name__}: {error}"))
        violations += [
            Violation(cycle, now, name, detail)
            for name, detail in broken_invariants(warehouse, market, starting_equity, market.activities[seen:])
        ]

    # A soak that never met a fault, a fill or a hand on the account proves nothing.
    kinds = Counter(fault.kind for fault in market.faults)
    fills = Counter(activity["type"] for activity in market.activities)
    sides = Counter(order["side"] for order in hydra_orders(market).values())
    exercised = {
        "every fault": set(kinds) == {"rate_limited", "server_error", "slow", "duplicate_after_accept"},
        "whole and partial fills": fills["fill"] > 0 and fills["partial_fill"] > 0,
        "buys and sells": sides["buy"] > 0 and sides["sell"] > 0,
        "manual closes": bool(market.manual_closes),
        "margin hikes": bool(hikes),
    }
    missing = [what for what, done in exercised.items() if not done]
    ran = f"faults {dict(kinds)}, fills {dict(fills)}, orders {dict(sides)}"
    assert not missing, f"the soak never met: {missing} ({ran})\n{summary(violations, market)}"
    assert not violations, f"{ran}\n{summary(violations, market)}"
