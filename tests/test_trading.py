"""The trading session on the simulated broker: the scheduled regime refit and restart safety."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from paper_session import CONFIG as PAPER_CONFIG
from paper_session import MINUTE, START, BuySpy, bar_frame

from adapters.sim_broker import SimBroker, us_equity_hours
from adapters.simulator import MarketSimulator
from core.config import EngineConfig
from core.snapshot import MarketSnapshot
from core.strategy import StrategyContext, StrategyOutput
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
        is_tradable=us_equity_hours,
    )


def test_the_hmm_is_fitted_once_enough_history_is_stored_and_then_decides(warehouse: Warehouse) -> None:
    # Six weeks of simulated history: past the features' warm-up, more than the 500 samples a fit needs.
    upsert(warehouse, MarketSimulator(seed=42, epoch=EPOCH).generate(EPOCH, EPOCH + timedelta(days=42)))
    now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    trader = session(warehouse)
    trader.step_and_record(load_snapshot(warehouse, trader.config, now), now, recorded_at=now)
    assert trader.regime_model is not None and trader.regime_model.version.startswith("hmm-")
    assert trader.state.detector.reading is not None
    assert trader.state.detector.reading.model_version == trader.regime_model.version
    fitted = trader.regime_model
    later = now + timedelta(hours=1)
    trader.step_and_record(load_snapshot(warehouse, trader.config, later), later, recorded_at=later)
    assert trader.regime_model is fitted  # not refitted before refit_every_days


def test_a_refit_says_nothing_of_rounding_in_its_last_em_step(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    """This fit's last EM step lowers the log-likelihood by rounding; hmmlearn would warn of it on
    stderr, across the backtest's progress bar. The fit is kept, as the others are."""
    upsert(warehouse, MarketSimulator(seed=42, epoch=EPOCH).generate(EPOCH, EPOCH + timedelta(days=52)))
    trader = session(warehouse)
    trader.refit_regime_if_due(EPOCH + timedelta(days=51, hours=16))
    assert trader.regime_model is not None
    assert [record.getMessage() for record in caplog.records if record.name.startswith("hmmlearn")] == []


def test_too_little_history_keeps_the_rules_and_a_restart_resumes_the_recorded_state(warehouse: Warehouse) -> None:
    upsert(warehouse, MarketSimulator(seed=42, epoch=EPOCH).generate(EPOCH, EPOCH + timedelta(days=8)))
    trader = session(warehouse)
    now = datetime(2026, 1, 26, 16, 0, tzinfo=UTC)
    for minute in range(0, 30, 10):
        moment = now + timedelta(minutes=minute)
        trader.step_and_record(load_snapshot(warehouse, trader.config, moment), moment, recorded_at=moment)
    assert trader.regime_model is None
    assert trader.state.detector.reading is not None and trader.state.detector.reading.model_version == "rules-v1"
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
