"""One trading cycle against any broker: collect fills -> decide -> submit -> record.

The same `TradingSession.step` runs every simulated minute of `hydra run` and every minute
of the paper-trading flow; only the broker and the source of the snapshot differ. The
engine's state is stored with each cycle, so a new process resumes a run where the last
one stopped (`resume_state`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.broker import Broker, BrokerError, BrokerOrder, OrderRefused, new_fill
from core.book import Book, Holding
from core.codec import decode
from core.config import EngineConfig
from core.pipeline import EngineState, apply_fills, forget_unfilled, regime_history, run_cycle
from core.regime import InsufficientHistory, RegimeModel
from core.snapshot import MarketSnapshot
from core.strategy import Strategy
from core.types import Fill, Order
from hydra.decide import load_snapshot
from hydra.recording import ENGINE_STATE_KEY, CycleRecord, record_cycle
from warehouse import Warehouse
from warehouse.sqlfiles import read_sql

MINUTES_PER_DAY = 1_440


@dataclass
class TrackedOrder:
    """An order sent to the broker whose fills are still being collected."""

    order: Order
    view: BrokerOrder | None  # None while the broker's answer is unknown (a timeout)
    recorded_qty: float = 0.0
    recorded_avg_price: float | None = None


@dataclass
class TradingSession:
    warehouse: Warehouse
    run_id: str
    config: EngineConfig
    broker: Broker
    strategies: Sequence[Strategy]
    is_tradable: Callable[[str, datetime], bool]
    state: EngineState = field(default_factory=EngineState)
    regime_model: RegimeModel | None = None
    tracked: dict[str, TrackedOrder] = field(default_factory=dict)
    fit_attempted_at: datetime | None = None

    def refit_regime_if_due(self, now: datetime) -> None:
        """Fit the HMM on the stored history on schedule; the rules classifier decides until one fits."""
        regime = self.config.regime
        interval = (
            timedelta(days=regime.refit_every_days)
            if self.regime_model is not None
            else timedelta(hours=regime.fit_retry_hours)
        )
        if self.fit_attempted_at is not None and now - self.fit_attempted_at < interval:
            return
        self.fit_attempted_at = now
        window = self.config.snapshot.model_copy(update={"minute_bars_days": regime.fit_history_days})
        history = load_snapshot(self.warehouse, self.config.model_copy(update={"snapshot": window}), now)
        features = regime_history(history, now, bars=int(regime.fit_history_days * MINUTES_PER_DAY))
        try:
            self.regime_model = RegimeModel.fit(features, now, regime.seed)
        except InsufficientHistory:
            return  # keep the model (or the rules) in force until enough history is stored

    def step(self, snapshot: MarketSnapshot, now: datetime) -> CycleRecord:
        self.refit_regime_if_due(now)
        fills, updates = self._collect_fills(now)
        outcome = apply_fills(self.state, fills, {cid: t.order for cid, t in self.tracked.items()}, self.config, now)
        finished = [cid for cid, t in self.tracked.items() if t.view is not None and t.view.status.is_final]
        state = forget_unfilled(outcome.state, finished)
        for cid in finished:
            del self.tracked[cid]

        book = book_from_broker(self.broker)
        started = time.perf_counter()
        result = run_cycle(
            snapshot,
            book,
            state,
            self.config,
            now,
            strategies=self.strategies,
            is_tradable=self.is_tradable,
            regime_model=self.regime_model,
        )
        decision_ms = (time.perf_counter() - started) * 1000
        views, refused = self._submit(result.orders)
        self.state = forget_unfilled(result.state, list(refused))
        return CycleRecord(
            result=result,
            book=book_from_broker(self.broker),
            state=self.state,
            orders=views,
            refused=refused,
            order_updates=updates,
            fills=fills,
            opened=outcome.opened,
            closed=outcome.closed,
            risk_events=outcome.risk_events,
            weight_updates=outcome.weight_updates,
            decision_ms=decision_ms,
        )

    def step_and_record(self, snapshot: MarketSnapshot, now: datetime, recorded_at: datetime) -> CycleRecord:
        record = self.step(snapshot, now)
        record_cycle(self.warehouse, self.run_id, record, recorded_at)
        return record

    def _collect_fills(self, now: datetime) -> tuple[list[Fill], list[tuple[Order, BrokerOrder]]]:
        """New fills of the tracked orders, and the orders whose state at the broker changed."""
        fills = []
        updates = []
        for cid, tracked in self.tracked.items():
            view = self.broker.order(cid)
            if view is None:
                continue
            if view != tracked.view:
                updates.append((tracked.order, view))
            tracked.view = view
            fill = new_fill(
                view,
                tracked.recorded_qty,
                tracked.recorded_avg_price,
                self.broker.fee(view.symbol, (view.filled_qty - tracked.recorded_qty) * (view.filled_avg_price or 0.0)),
                view.updated_at or now,
            )
            if fill is not None:
                fills.append(fill)
                tracked.recorded_qty = view.filled_qty
                tracked.recorded_avg_price = view.filled_avg_price
        return fills, updates

    def _submit(self, orders: Sequence[Order]) -> tuple[dict[str, BrokerOrder], dict[str, str]]:
        views: dict[str, BrokerOrder] = {}
        refused: dict[str, str] = {}
        for order in orders:
            try:
                view: BrokerOrder | None = self.broker.submit(order)
            except OrderRefused as refusal:
                refused[order.client_order_id] = refusal.reason
                continue
            except BrokerError:
                view = None  # the outcome is unknown: the next cycle looks the order up by its id
            self.tracked[order.client_order_id] = TrackedOrder(order, view)
            if view is not None:
                views[order.client_order_id] = view
        return views, refused


def book_from_broker(broker: Broker) -> Book:
    account = broker.account()
    positions = broker.positions()
    return Book(
        account.cash,
        holdings={p.symbol: Holding(p.qty, p.avg_entry_price) for p in positions if p.qty},
        marks={p.symbol: abs(p.market_value / p.qty) for p in positions if p.qty},
    )


def resume_state(warehouse: Warehouse, run_id: str) -> EngineState:
    """The state the run's last recorded cycle left, or a fresh one for a new run."""
    with warehouse.connect() as con:
        row = con.execute(read_sql("read/engine_state"), {"run_id": run_id, "key": ENGINE_STATE_KEY}).fetchone()
    return EngineState() if row is None else decode(EngineState, json.loads(row[0]))
