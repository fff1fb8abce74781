"""One trading cycle against any broker: collect fills -> reconcile -> decide -> record -> submit.

The same `TradingSession.step_and_record` runs every simulated minute of `hydra run` and
every run of the minutely trading flow; only the broker and the source of the snapshot
differ. Nothing lives only in memory: the engine's state and the orders still working are in
the warehouse, so a fresh process (each served flow run is one)
resumes a run exactly where the last one stopped (`TradingSession.resume`).

Crash safety is a write-ahead rule: a cycle's decisions and orders are recorded (orders as
'pending') before any order is sent, and the broker's answers are recorded after. The simulated
broker's account is part of the warehouse: it is written in the same transactions
(`kept_with_records`), so a crash can never leave answers recorded that the account lost. A run
that dies in between leaves 'pending' rows; the next run looks each one up at the broker by
its deterministic client order id, and either follows it (it arrived) or closes it as never
sent. Orders the broker has under HYDRA's id prefix that no run recorded at all (a restored
warehouse, a hand-placed order) are recorded once, with a reconciliation row saying so.

Positions changed by hand at the broker are reconciled at the broker's own fills (its FILL
activities, `Broker.executions`) of the orders no run of HYDRA placed: a trade closed by hand
gets the P&L the broker booked, in parts when it was closed in parts.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from adapters.broker import Broker, BrokerError, BrokerOrder, OrderRefused, OrderStatus, RefusalKind, new_fill
from core.book import Book, Holding
from core.calendar import MarketCalendar
from core.codec import decode
from core.config import EngineConfig
from core.pipeline import (
    EngineState,
    apply_fills,
    forget_orders,
    reconcile_positions,
    run_cycle,
    settle_submissions,
    short_at_broker,
)
from core.risk import WorkingOrder
from core.snapshot import MarketSnapshot
from core.strategy import Strategy
from core.types import Fill, Order, Side
from hydra.recording import (
    ENGINE_STATE_KEY,
    CycleRecord,
    Discrepancy,
    KeptState,
    RecordBuffer,
    record_cycle,
    record_orders,
    record_submissions,
    stored_value,
)
from warehouse import Warehouse
from warehouse.read import query_frame

CLIENT_ID_PREFIX = "hy-"
# How far back the broker's order history is searched for orders no run recorded.
UNRECORDED_LOOKBACK = timedelta(days=2)
NEVER_SENT = "never reached the broker: the run stopped, or the request failed, before it arrived"


class AlreadyDecided(Exception):
    """The run has already decided at this time or later: deciding again would double its orders."""


@dataclass
class TrackedOrder:
    """An order sent to the broker whose fills are still being collected."""

    order: Order
    view: BrokerOrder | None  # None until the broker's answer is read in this process
    acknowledged: bool  # the broker has answered for it at least once (in this run or an earlier one)
    recorded_qty: float = 0.0
    recorded_avg_price: float | None = None


@dataclass
class TradingSession:
    warehouse: Warehouse
    run_id: str
    config: EngineConfig
    broker: Broker
    strategies: Sequence[Strategy]
    calendar: MarketCalendar  # when each symbol trades, and the sessions the regime is read in
    state: EngineState = field(default_factory=EngineState)
    tracked: dict[str, TrackedOrder] = field(default_factory=dict)
    buffer: RecordBuffer | None = None  # a replay's: rows held until it flushes; None writes each cycle
    # Values written in the same transaction as each of the cycle's records when they are written
    # at once (no buffer): the simulated broker's account (hydra.live), so the warehouse never
    # holds an answer of the broker that the saved account lacks. A replay's are kept at its flush.
    kept_with_records: Callable[[datetime], Sequence[KeptState]] = lambda now: ()

    @classmethod
    def resume(
        cls,
        warehouse: Warehouse,
        run_id: str,
        config: EngineConfig,
        broker: Broker,
        strategies: Sequence[Strategy],
        calendar: MarketCalendar,
    ) -> TradingSession:
        """The run as its last recorded cycle left it (a fresh one for a new run id)."""
        session = cls(
            warehouse=warehouse,
            run_id=run_id,
            config=config,
            broker=broker,
            strategies=strategies,
            calendar=calendar,
            state=resume_state(warehouse, run_id),
        )
        with warehouse.connect() as con:
            working = query_frame(con, "read/working_orders", {"run_id": run_id})
        for row in working.iter_rows(named=True):
            session.tracked[row["client_order_id"]] = TrackedOrder(
                order=_order_of(row),
                view=None,
                acknowledged=row["status"] != "pending",
                recorded_qty=row["filled_qty"],
                recorded_avg_price=row["filled_avg_price"],
            )
        return session

    def adopt_unrecorded_orders(self, now: datetime, recorded_at: datetime) -> list[Discrepancy]:
        """Record, once, the broker's HYDRA orders that no run has recorded, and follow them from now on."""
        since = (self.state.last_cycle_at or now) - UNRECORDED_LOOKBACK
        candidates = [o for o in self.broker.recent_orders(since) if o.client_order_id.startswith(CLIENT_ID_PREFIX)]
        if not candidates:
            return []
        known = self._recorded("client_order_id", [o.client_order_id for o in candidates])
        adopted = []
        discrepancies = []
        for view in candidates:
            if view.client_order_id in known or view.client_order_id in self.tracked:
                continue
            order = _order_from_broker(view, [s.name for s in self.strategies], now)
            adopted.append((order, view))
            discrepancies.append(
                Discrepancy(
                    kind="unrecorded_order",
                    subject=view.client_order_id,
                    warehouse_value=None,
                    broker_value=f"{view.side} {view.qty:g} {view.symbol} {view.status}",
                    resolution="recorded from the broker; its fills are followed, it opens no managed position",
                )
            )
            # Fills are collected from zero so they are recorded like any other order's.
            self.tracked[view.client_order_id] = TrackedOrder(order, None, acknowledged=True)
        if adopted:
            record_orders(self.warehouse, self.run_id, adopted, discrepancies, now, recorded_at)
        return discrepancies

    def step_and_record(self, snapshot: MarketSnapshot, now: datetime, recorded_at: datetime) -> CycleRecord:
        if self.state.last_cycle_at is not None and now <= self.state.last_cycle_at:
            raise AlreadyDecided(
                f"run {self.run_id} already decided at {self.state.last_cycle_at.isoformat()}; not again at "
                f"{now.isoformat()}"
            )
        marks = [time.perf_counter()]
        fills, updates, never_sent, found = self._collect_fills(now)
        # An order whose submit had no answer counts as a trade once it is found placed.
        state = settle_submissions(self.state, found, {})
        outcome = apply_fills(state, fills, {cid: t.order for cid, t in self.tracked.items()}, self.config, now)
        finished = [cid for cid, t in self.tracked.items() if t.view is not None and t.view.status.is_final]
        book = book_from_broker(self.broker)
        working = frozenset(t.order.symbol for cid, t in self.tracked.items() if cid not in finished)
        broker_qty = {symbol: holding.qty for symbol, holding in book.holdings().items()}
        prices = {symbol: price for symbol in broker_qty if (price := book.last_price(symbol)) is not None}
        short = short_at_broker(outcome.state, broker_qty, working)
        outside = self._outside_fills(min(short.values()), frozenset(short)) if short else []
        reconciled = reconcile_positions(outcome.state, broker_qty, prices, working, now, outside)
        state = forget_orders(reconciled.state, finished)
        for cid in finished:
            del self.tracked[cid]

        marks.append(time.perf_counter())
        result = run_cycle(
            snapshot,
            book,
            state,
            self.config,
            now,
            strategies=self.strategies,
            is_tradable=self.calendar.is_open,
            calendar=self.calendar,
            working=self._working_orders(),
        )
        marks.append(time.perf_counter())
        discrepancies = [
            *never_sent,
            *(
                Discrepancy(
                    kind="position_mismatch",
                    subject=d.symbol,
                    warehouse_value=f"{d.managed_qty:.10g}",
                    broker_value=f"{d.broker_qty:.10g}",
                    resolution=d.resolution,
                )
                for d in reconciled.differences
            ),
        ]
        record = CycleRecord(
            result=result,
            book=book,
            state=result.state,
            order_updates=updates,
            fills=fills,
            opened=outcome.opened,
            closed=(*outcome.closed, *reconciled.closed),
            risk_events=outcome.risk_events,
            weight_updates=outcome.weight_updates,
            decision_ms=(marks[2] - marks[1]) * 1000,
            reconciliations=discrepancies,
        )
        record_cycle(self.warehouse, self.run_id, record, recorded_at, self.buffer, self._kept(now))
        marks.append(time.perf_counter())
        views, refused = self._submit(result.orders)
        accepted = [cid for cid, view in views.items() if view.status is not OrderStatus.REJECTED]
        self.state = settle_submissions(result.state, accepted, {cid: _lasting(r) for cid, r in refused.items()})
        marks.append(time.perf_counter())
        submitted = replace(record, state=self.state, orders=views, refused=refused)
        if result.orders:
            record_submissions(
                self.warehouse, self.run_id, result.orders, submitted, recorded_at, self.buffer, self._kept(now)
            )
        marks.append(time.perf_counter())
        ms = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(marks)]
        timings = {"broker": ms[0], "decide": ms[1], "record": ms[2] + ms[4], "submit": ms[3]}
        return replace(submitted, timings_ms=timings)

    def _kept(self, now: datetime) -> Sequence[KeptState]:
        return self.kept_with_records(now) if self.buffer is None else ()

    def _collect_fills(
        self, now: datetime
    ) -> tuple[list[Fill], list[tuple[Order, BrokerOrder]], list[Discrepancy], list[str]]:
        """New fills of the tracked orders, the orders whose state at the broker changed, the
        orders found never sent (closed as canceled), and the orders whose submit had no answer
        found accepted."""
        fills = []
        updates = []
        never_sent = []
        found = []
        for cid, tracked in self.tracked.items():
            view = self.broker.order(cid)
            if view is None:
                if not tracked.acknowledged:
                    view = _never_sent(tracked.order, now)
                    never_sent.append(
                        Discrepancy("order_status", cid, "pending", "not found", f"closed as canceled: {NEVER_SENT}")
                    )
                else:
                    continue  # the broker lost sight of it for a moment: ask again next cycle
            elif not tracked.acknowledged and view.status is not OrderStatus.REJECTED:
                found.append(cid)
            if view != tracked.view:
                updates.append((tracked.order, view))
            tracked.view = view
            tracked.acknowledged = True
            fill = new_fill(
                view, tracked.recorded_qty, tracked.recorded_avg_price, self.broker.fee, view.updated_at or now
            )
            if fill is not None:
                fills.append(fill)
                tracked.recorded_qty = view.filled_qty
                tracked.recorded_avg_price = view.filled_avg_price
        return fills, updates, never_sent, found

    def _recorded(self, id_column: str, ids: list[str]) -> set[str]:
        """Which of these order ids (`client_order_id` or `broker_order_id`) some run of HYDRA recorded."""
        query = {"client_order_id": "read/known_orders", "broker_order_id": "read/known_broker_orders"}[id_column]
        with self.warehouse.connect() as con:
            return set(query_frame(con, query, {f"{id_column}s": ids}).get_column(id_column))

    def _outside_fills(self, since: datetime, symbols: frozenset[str]) -> list[Fill]:
        """The broker's fills of `symbols` since `since` of orders no run of HYDRA placed (closed
        by hand, liquidated): what reconciliation closes managed trades at."""
        executions = [e for e in self.broker.executions(since) if e.symbol in symbols]
        if not executions:
            return []
        hydra_orders = self._recorded("broker_order_id", [e.broker_order_id for e in executions])
        hydra_orders |= {
            t.view.broker_order_id for t in self.tracked.values() if t.view is not None and t.view.broker_order_id
        }
        return [
            # An order placed outside HYDRA has no client id of HYDRA's: the broker's own names it.
            Fill(
                e.execution_id,
                e.broker_order_id,
                e.symbol,
                e.side,
                e.qty,
                e.price,
                self.broker.fee(e.symbol, e.qty * e.price),
                e.ts,
            )
            for e in executions
            if e.broker_order_id not in hydra_orders
        ]

    def _working_orders(self) -> list[WorkingOrder]:
        """The tracked orders' unfilled rest (an order whose submit had no answer may be working too)."""
        return [
            WorkingOrder(order.symbol, order.side, order.intent, order.qty - tracked.recorded_qty, order.decision_price)
            for tracked in self.tracked.values()
            if (order := tracked.order).qty > tracked.recorded_qty
        ]

    def _submit(self, orders: Sequence[Order]) -> tuple[dict[str, BrokerOrder], dict[str, OrderRefused]]:
        views: dict[str, BrokerOrder] = {}
        refused: dict[str, OrderRefused] = {}
        for order in orders:
            try:
                view: BrokerOrder | None = self.broker.submit(order)
            except OrderRefused as refusal:
                refused[order.client_order_id] = refusal
                continue
            except BrokerError:
                view = None  # the outcome is unknown: the next cycle looks the order up by its id
            if view is not None and view.filled_qty > 0:
                # An order found by its id (a retried submit that met the duplicate id) may have
                # filled already. Recorded as filled here, a new process would no longer follow it
                # and its fill would never be booked: it is recorded as accepted, and the next
                # cycle's _collect_fills books its fills like any order's.
                view = replace(view, status=OrderStatus.ACCEPTED, filled_qty=0.0, filled_avg_price=None)
            self.tracked[order.client_order_id] = TrackedOrder(order, view, acknowledged=view is not None)
            if view is not None:
                views[order.client_order_id] = view
        return views, refused


def _lasting(refusal: OrderRefused) -> str | None:
    """The refusal's code when it will not change within the view, else None."""
    return refusal.code.value if refusal.kind is RefusalKind.PERMANENT else None


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
    stored = stored_value(warehouse, run_id, ENGINE_STATE_KEY)
    return EngineState() if stored is None else decode(EngineState, stored)


def _order_of(row: dict[str, Any]) -> Order:
    return Order(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=row["qty"],
        strategy=row["strategy"],
        intent=row["intent"],
        decision_price=row["decision_price"],
        ts_event=row["ts_event"],
        order_type=row["order_type"],
        limit_price=row["limit_price"],
        trade_id=row["trade_id"],
        proposal_id=row["proposal_id"],
        reason=row["reason"] or "",
    )


def _order_from_broker(view: BrokerOrder, strategy_names: Sequence[str], now: datetime) -> Order:
    """An order as far as the broker knows it; its strategy is read back from the client order id."""
    # Client ids are 'hy-<yyyymmddHHMM>-<strategy[:14]>-<symbol>-<digest>'.
    parts = view.client_order_id.split("-")
    abbreviated = parts[2] if len(parts) > 2 else ""
    strategy = next((name for name in strategy_names if name[:14] == abbreviated), "unknown")
    return Order(
        client_order_id=view.client_order_id,
        symbol=view.symbol,
        side=view.side,
        qty=view.qty,
        strategy=strategy,
        intent="entry",
        decision_price=view.filled_avg_price or 0.0,
        ts_event=view.submitted_at or now,
        # The broker's view carries no limit price, which a limit Order must have: the order
        # as placed stays at the broker; HYDRA only needs what it is to follow its fills.
        order_type="market",
        reason="adopted from the broker",
    )


def _never_sent(order: Order, now: datetime) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=order.client_order_id,
        broker_order_id=None,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty,
        order_type=order.order_type,
        time_in_force="day",
        status=OrderStatus.CANCELED,
        filled_qty=0.0,
        filled_avg_price=None,
        submitted_at=None,
        updated_at=now,
        status_reason=NEVER_SENT,
    )
