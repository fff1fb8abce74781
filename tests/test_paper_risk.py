"""The risk limits in a paper session against Alpaca (a local server in Alpaca's formats, the
real alpaca-py client): refusals spend no trade of the day, orders still working take their room."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar

import polars as pl
import pytest
from fake_alpaca import ORDERS, FakeAlpaca, payload, reply
from paper_session import CONFIG, MINUTE, RUN, START, BuySpy, bar_frame, resume_session, step
from pytest_httpserver import HTTPServer

from core.calendar import Timeframe
from core.config import EngineConfig, RiskConfig
from core.snapshot import MarketSnapshot
from core.strategy import Strategy, StrategyContext, StrategyOutput
from core.types import Regime, Side, Signal, TradeProposal
from hydra.trading import TradingSession
from warehouse import Warehouse
from warehouse.sqlfiles import read_sql

NO_BUYING_POWER = {"buying_power": "1203.55", "code": 40310000, "message": "insufficient buying power"}
TWO_TRADES_A_DAY = EngineConfig(regime=CONFIG.regime, risk=RiskConfig(max_trades_per_day=2))


@pytest.fixture
def fake(alpaca_server: HTTPServer) -> FakeAlpaca:
    alpaca = FakeAlpaca(alpaca_server)
    alpaca.positions = []
    return alpaca


def resume(
    warehouse: Warehouse,
    alpaca_server: HTTPServer,
    config: EngineConfig = CONFIG,
    strategies: Sequence[Strategy] = (BuySpy(),),
) -> TradingSession:
    return resume_session(warehouse, alpaca_server.url_for("").rstrip("/"), config, strategies)


def rows(warehouse: Warehouse, sql: str, **params: object) -> list[tuple[Any, ...]]:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql, {"run_id": RUN, **params}).fetchall()


def trades_today(session: TradingSession) -> int:
    assert session.state.risk is not None
    return session.state.risk.trades_today


def test_entries_refused_by_hydra_or_by_alpaca_spend_none_of_the_day_s_trades(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    """Issue 16, defect 2: every approval counted as a trade of the day, so refused orders used up
    the limit and a later acceptable entry was rejected by max_trades_per_day."""
    now = START + 30 * MINUTE
    fake.clock = payload("clock_closed.json")  # HYDRA refuses before sending: Alpaca says closed
    for minute in range(2):
        step(resume(warehouse, alpaca_server, TWO_TRADES_A_DAY), now + minute * MINUTE)
    fake.clock = payload("clock_open.json")
    fake.script[("POST", ORDERS)] += [lambda _: reply(NO_BUYING_POWER, 403)] * 2
    for minute in range(2, 4):  # Alpaca refuses: 403
        step(resume(warehouse, alpaca_server, TWO_TRADES_A_DAY), now + minute * MINUTE)
    assert fake.orders == {}
    session = resume(warehouse, alpaca_server, TWO_TRADES_A_DAY)
    assert trades_today(session) == 0

    [decision] = step(session, now + 4 * MINUTE).result.decisions
    assert decision.approved, decision.reasons
    assert len(fake.orders) == 1
    assert trades_today(resume(warehouse, alpaca_server, TWO_TRADES_A_DAY)) == 1
    by_time = "SELECT status, refusal_code, refusal_kind FROM orders WHERE run_id = $run_id ORDER BY ts_event"
    assert rows(warehouse, by_time) == [
        ("refused", "market_closed", "transient"),
        ("refused", "market_closed", "transient"),
        ("refused", "insufficient_buying_power", "transient"),
        ("refused", "insufficient_buying_power", "transient"),
        ("accepted", None, None),
    ]
    assert rows(warehouse, read_sql("checks/trades_per_day_over_limit"), max_trades_per_day=2) == []
    by_code = """SELECT code, kind, strategy, symbol, refusals, first_at, last_at
                 FROM analytics_broker_refusals WHERE run_id = $run_id ORDER BY code"""
    assert rows(warehouse, by_code) == [
        ("insufficient_buying_power", "transient", "cross_asset", "SPY", 2, now + 2 * MINUTE, now + 3 * MINUTE),
        ("market_closed", "transient", "cross_asset", "SPY", 2, now, now + MINUTE),
    ]


def test_an_entry_still_working_takes_its_room_under_the_asset_limit(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    """Issue 16, defect 14: the next cycle saw no exposure in an unfilled entry, so two cycles
    approved SPY entries worth 6% of equity against the 5% per-asset limit."""
    now = START + 30 * MINUTE
    session = resume(warehouse, alpaca_server)
    results = [step(session, now + minute * MINUTE).result for minute in range(3)]
    assert all(order["status"] == "accepted" for order in fake.orders.values())  # nothing filled yet
    equity = results[0].equity
    approved = [d for result in results for d in result.decisions if d.approved]
    assert sum(d.notional for d in approved) <= 0.05 * equity * (1 + 1e-9)
    first, second, third = (result.decisions[0] for result in results)
    assert first.notional == pytest.approx(0.03 * equity)
    assert second.notional == pytest.approx(0.02 * equity, rel=1e-3)
    assert "max_asset" in second.codes
    assert not third.approved and "max_asset" in third.codes


class ShortGldOnAMarginHike:
    """precious_metals' margin-hike view: short GLD, entered once although the view lasts many cycles."""

    name: ClassVar[str] = "precious_metals"
    symbols: ClassVar[tuple[str, ...]] = ("GLD",)
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"bars": timedelta(minutes=5)})
    overrides_regime: ClassVar[bool] = True
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.DAY_1

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        price = context.snapshot.last_price("GLD")
        assert price is not None
        signal = Signal("precious_metals", "GLD", -0.6, 0.8, "margin_hike", START, timedelta(hours=4))
        if ("GLD", Side.SELL) in context.entered:
            return StrategyOutput(signals=(signal,))
        proposal = TradeProposal(
            strategy="precious_metals",
            symbol="GLD",
            side=Side.SELL,
            entry=price,
            stop=price * 1.01,
            target=price * 0.98,
            horizon=START + timedelta(hours=4) - context.now,
            confidence=0.8,
            signal_ids=(signal.signal_id,),
            ts_event=context.now,
        )
        return StrategyOutput(signals=(signal,), proposals=(proposal,))


def test_a_short_alpaca_will_never_take_is_refused_once_not_every_minute(
    warehouse: Warehouse, alpaca_server: HTTPServer, fake: FakeAlpaca
) -> None:
    """Issue 16, defect 2: precious_metals proposed the same GLD short every cycle, refused each time."""
    fake.assets["GLD"]["shortable"] = False
    bars = bar_frame({"GLD": [190.0 + 0.01 * i for i in range(90)]}, volume=5e5)
    now = START + 30 * MINUTE
    for minute in range(5):
        at = now + minute * MINUTE
        session = resume(warehouse, alpaca_server, strategies=(ShortGldOnAMarginHike(),))
        snapshot = MarketSnapshot(as_of=at, tables={"bars": bars.filter(pl.col("ts_ingested") <= at)})
        session.step_and_record(snapshot, at, recorded_at=at)
    refused = "SELECT ts_event, refusal_code, refusal_kind FROM orders WHERE run_id = $run_id AND status = 'refused'"
    assert rows(warehouse, refused) == [(now, "not_shortable", "permanent")]
    assert rows(warehouse, "SELECT count(*) FROM risk_decisions WHERE run_id = $run_id") == [(1,)]
    assert trades_today(resume(warehouse, alpaca_server)) == 0
    assert fake.orders == {}
