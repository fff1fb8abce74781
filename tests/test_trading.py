"""The trading session on the simulated broker: restart safety."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from paper_session import CONFIG as PAPER_CONFIG
from paper_session import MINUTE, START, BuySpy, bar_frame

from adapters.sim_broker import SimBroker
from adapters.simulator import MarketSimulator
from core.config import EngineConfig
from core.snapshot import MarketSnapshot
from core.strategy import StrategyContext, StrategyOutput
from hydra.context import market_calendar
from hydra.decide import load_snapshot
from hydra.trading import TradingSession, resume_state
from strategies import REGISTRY
from warehouse import Warehouse
from warehouse.load import upsert

EPOCH = datetime(2026, 1, 19, tzinfo=UTC)


def session(warehouse: Warehouse, run_id: str = "test-run") -> TradingSession:
    return TradingSession(
        warehouse=warehouse,
        run_id=run_id,
        config=EngineConfig(),
        broker=SimBroker(starting_cash=100_000.0, slippage_bps=2.0, fee_bps=1.0),
        strategies=REGISTRY,
        calendar=market_calendar(),
    )


def test_a_restart_resumes_the_recorded_state(warehouse: Warehouse) -> None:
    upsert(warehouse, MarketSimulator(seed=42, epoch=EPOCH).generate(EPOCH, EPOCH + timedelta(days=8)))
    trader = session(warehouse)
    now = datetime(2026, 1, 26, 16, 0, tzinfo=UTC)
    for minute in range(0, 30, 10):
        moment = now + timedelta(minutes=minute)
        trader.step_and_record(load_snapshot(warehouse, trader.config, moment), moment, recorded_at=moment)
    assert trader.state.detector.reading is not None
    assert resume_state(warehouse, "test-run") == trader.state
    assert resume_state(warehouse, "another-run").cycle_no == 0


class BuySpyOnceForTenMinutes(BuySpy):
    """BuySpy's view, entered at the first cycle only and held ten minutes: a time exit closes it."""

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        output = super().evaluate(context)
        if context.now > START + MINUTE:
            return replace(output, proposals=())
        return replace(output, proposals=tuple(replace(p, horizon=10 * MINUTE) for p in output.proposals))


def test_fills_in_parts_record_fees_and_trade_pnl_that_add_up_to_the_broker_s_cash(warehouse: Warehouse) -> None:
    """Thin bars fill the entry and the time exit three shares a minute at changing prices: the
    recorded fills' fees are the broker's, and the trade's P&L, closed in parts, is the cash it made."""
    broker = SimBroker(starting_cash=100_000.0, slippage_bps=2.0, fee_bps=1.0)
    trader = replace(session(warehouse), config=PAPER_CONFIG, broker=broker, strategies=(BuySpyOnceForTenMinutes(),))
    closes = [500.0 + 0.7 * i for i in range(20)]
    bars = bar_frame({"SPY": closes}, volume=30.0)  # 10% of 30: three shares a bar
    for minute in range(1, 20):
        now = START + minute * MINUTE
        opened = START + (minute - 1) * MINUTE
        price = closes[minute - 1]
        broker.on_bar({"SPY": (opened, price, price * 1.001, price * 0.999, price, 30.0)}, now)
        snapshot = MarketSnapshot(as_of=now, tables={"bars": bars.filter(pl.col("ts_ingested") <= now)})
        trader.step_and_record(snapshot, now, recorded_at=now)

    with warehouse.connect(read_only=True) as con:
        fill_parts, fees = con.execute("SELECT count(*), sum(fee) FROM fills WHERE run_id = 'test-run'").fetchone()
        trades = con.execute("SELECT status, exit_reason, pnl, fees FROM trades WHERE run_id = 'test-run'").fetchall()
    assert fill_parts > 2  # the entry and the exit each filled in parts
    assert broker.positions() == [] and [(status, reason) for status, reason, _, _ in trades] == [("closed", "time")]
    account = broker.export_state()
    assert fees == pytest.approx(account.fees, abs=1e-9)
    [(_, _, pnl, trade_fees)] = trades
    assert trade_fees == pytest.approx(account.fees, abs=1e-9)
    assert pnl == pytest.approx(account.cash - 100_000.0, abs=1e-9)
