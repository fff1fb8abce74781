"""The trading session on the simulated broker: restart safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.sim_broker import SimBroker
from adapters.simulator import MarketSimulator
from core.config import EngineConfig
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
