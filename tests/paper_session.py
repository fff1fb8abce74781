"""A paper-trading session on Alpaca (a local fake) that wants SPY every cycle, on a fixed
snapshot: what the execution and crash tests drive, in the test process or in a child one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar

import polars as pl
from fake_alpaca import API_KEY, SECRET_KEY

from adapters.alpaca_broker import AlpacaBroker
from core.calendar import Timeframe
from core.config import EngineConfig, RegimeConfig
from core.snapshot import MarketSnapshot
from core.strategy import Strategy, StrategyContext, StrategyOutput
from core.types import Regime, Side, Signal, TradeProposal
from hydra.context import market_calendar
from hydra.trading import TradingSession
from warehouse import Warehouse

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 in New York: the session opens
MINUTE = timedelta(minutes=1)
CONFIG = EngineConfig(regime=RegimeConfig(observation_cycles=0))
RUN = "paper-test"


class BuySpy:
    """Wants SPY every cycle, with a 1% stop and a 2R target."""

    name: ClassVar[str] = "cross_asset"
    symbols: ClassVar[tuple[str, ...]] = ("SPY",)
    regimes: ClassVar[frozenset[Regime]] = frozenset(Regime)
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType({"bars": timedelta(minutes=5)})
    overrides_regime: ClassVar[bool] = True
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.DAY_1

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        price = context.snapshot.last_price("SPY")
        assert price is not None
        signal = Signal("cross_asset", "SPY", 0.8, 0.9, "test", context.now, timedelta(hours=1))
        proposal = TradeProposal(
            strategy="cross_asset",
            symbol="SPY",
            side=Side.BUY,
            entry=price,
            stop=price * 0.99,
            target=price * 1.02,
            horizon=timedelta(hours=4),
            confidence=0.7,
            signal_ids=(signal.signal_id,),
            ts_event=context.now,
        )
        return StrategyOutput(signals=(signal,), proposals=(proposal,))


def bar_frame(prices: Mapping[str, list[float]], volume: float = 1000.0, start: datetime = START) -> pl.DataFrame:
    """Minute bars from START, one per close, each known when it closes."""
    rows = []
    for symbol, closes in prices.items():
        for i, close in enumerate(closes):
            ts = start + i * MINUTE
            rows.append((symbol, "1Min", ts, close, close * 1.001, close * 0.999, close, volume, "test", ts + MINUTE))
    return pl.DataFrame(
        rows,
        schema={
            "symbol": pl.Utf8,
            "timeframe": pl.Utf8,
            "ts_event": pl.Datetime("us", "UTC"),
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
            "source": pl.Utf8,
            "ts_ingested": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def snapshot_at(now: datetime) -> MarketSnapshot:
    """SPY rising 10 cents a minute, with volume enough to fill any test order at once."""
    bars = bar_frame({"SPY": [500.0 + 0.1 * i for i in range(90)]}, volume=5e5)
    return MarketSnapshot(as_of=now, tables={"bars": bars.filter(pl.col("ts_ingested") <= now)})


def resume_session(
    warehouse: Warehouse,
    alpaca_url: str,
    config: EngineConfig = CONFIG,
    strategies: Sequence[Strategy] = (BuySpy(),),
) -> TradingSession:
    """A new process's session: everything it knows comes from the warehouse and the broker."""
    broker = AlpacaBroker(API_KEY, SECRET_KEY, alpaca_url, timeout_s=2.0, max_retries=1, retry_wait_s=0.01)
    return TradingSession.resume(warehouse, RUN, config, broker, strategies, market_calendar())


def step(session: TradingSession, now: datetime) -> Any:
    return session.step_and_record(snapshot_at(now), now, recorded_at=now)
