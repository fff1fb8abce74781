"""Every decision of a cycle as rows of the warehouse's trading tables.

The rows of one cycle (its regime, signals, abstentions, proposals, risk decisions, orders,
fills, trades, positions, equity, weights, kill-switch events and the engine state the next
cycle starts from) are written in one transaction, so a crash mid-record leaves either the
whole cycle or none of it, and re-recording the same cycle rewrites the same keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from adapters.broker import BrokerOrder, OrderRefused
from core.book import Book
from core.codec import encode
from core.pipeline import CycleResult, EngineState
from core.positions import ClosedTrade, ManagedPosition
from core.risk import RiskEvent
from core.snapshot import FeedHealth
from core.strategy import Availability
from core.types import Fill, Order
from warehouse import Warehouse
from warehouse.connection import in_transaction
from warehouse.load import upsert_rows
from warehouse.sqlfiles import read_sql

TIMESTAMP = pl.Datetime("us", "UTC")
ENGINE_STATE_KEY = "engine"


@dataclass(frozen=True)
class Discrepancy:
    """A difference between the broker and the warehouse, and how it was resolved (the broker wins)."""

    kind: str  # 'position_mismatch' | 'unrecorded_order' | 'order_status'
    subject: str  # a symbol or a client order id
    warehouse_value: str | None
    broker_value: str | None
    resolution: str


@dataclass(frozen=True)
class CycleRecord:
    """What happened in one cycle beyond the decision itself: the broker's side."""

    result: CycleResult
    book: Book  # after this cycle's fills, marked to the cycle's prices
    state: EngineState  # what the next cycle starts from
    orders: Mapping[str, BrokerOrder] = field(default_factory=dict)  # client id -> the broker's view
    # Orders of earlier cycles whose state at the broker changed (filled, cancelled, expired).
    order_updates: Sequence[tuple[Order, BrokerOrder]] = ()
    refused: Mapping[str, OrderRefused] = field(default_factory=dict)  # client id -> why it was not sent
    fills: Sequence[Fill] = ()
    opened: Sequence[ManagedPosition] = ()
    closed: Sequence[ClosedTrade] = ()
    risk_events: Sequence[RiskEvent] = ()
    weight_updates: Sequence[Any] = ()
    decision_ms: float | None = None
    reconciliations: Sequence[Discrepancy] = ()
    # Where the cycle's wall time went: broker (fills, account), decide, record, submit, and
    # read (the snapshot) when the caller read it.
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    feed_health: Mapping[str, FeedHealth] = field(default_factory=dict)  # the snapshot's: what the cycle knew


class RecordBuffer:
    """Rows held back and written together: a replay's cycles, flushed a chunk at a time.

    Nothing in a replay reads its own rows back before the replay ends, and nothing else may
    write the warehouse meanwhile, so the write-ahead rule of live trading buys it nothing;
    one transaction per chunk instead of two per cycle does. Rows of the same key keep the
    latest, as they would have written one after the other.
    """

    def __init__(self) -> None:
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._closures: list[dict[str, Any]] = []
        # Only the newest state of a run is kept: it is encoded once, at the flush.
        self._states: dict[tuple[str, str], KeptState] = {}

    def add(self, rows: Mapping[str, Sequence[dict[str, Any]]], closures: Sequence[dict[str, Any]]) -> None:
        for table, table_rows in rows.items():
            self._rows.setdefault(table, []).extend(table_rows)
        self._closures.extend(closures)

    def keep_state(self, state: KeptState) -> None:
        self._states[(state.run_id, state.key)] = state

    def flush(self, warehouse: Warehouse) -> None:
        if not self._rows and not self._closures and not self._states:
            return
        rows = dict(self._rows)
        if self._states:
            rows["engine_state"] = [state.row() for state in self._states.values()]
        _write(warehouse, rows, self._closures)
        self._rows, self._closures, self._states = {}, [], {}


@dataclass(frozen=True)
class KeptState:
    """A value the run keeps under a key (EngineState under 'engine'), not yet encoded."""

    run_id: str
    key: str
    value: Any
    ts: datetime

    def row(self) -> dict[str, Any]:
        return _state_row(self.run_id, self.key, encode(self.value), self.ts)


def record_cycle(
    warehouse: Warehouse,
    run_id: str,
    record: CycleRecord,
    recorded_at: datetime,
    buffer: RecordBuffer | None = None,
    kept: Sequence[KeptState] = (),
) -> None:
    """Write the cycle; its orders are written before they are sent (status 'pending'), so a run
    that dies while submitting leaves every order it may have placed in the warehouse. `kept`
    values (the simulated broker's account) are written in the same transaction."""
    closures = [
        {
            "run_id": run_id,
            "trade_id": trade.position.trade_id,
            "exit_ts": trade.exit_ts,
            "exit_price": trade.exit_price,
            "exit_reason": trade.reason.value,
            "closes_trade": trade.rest is None,
            "qty": trade.position.qty,
            "pnl": trade.pnl,
            "exit_fee": trade.exit_fee,
            "realized_r": trade.realized_r,
            "ts_ingested": recorded_at,
        }
        for trade in record.closed
    ]
    state = KeptState(run_id, ENGINE_STATE_KEY, record.state, record.result.now)
    _record(warehouse, cycle_rows(run_id, record, recorded_at), closures, [state, *kept], buffer)


def record_submissions(
    warehouse: Warehouse,
    run_id: str,
    orders: Sequence[Order],
    record: CycleRecord,
    recorded_at: datetime,
    buffer: RecordBuffer | None = None,
    kept: Sequence[KeptState] = (),
) -> None:
    """The broker's answers to a cycle's orders, and the state that follows from them, in one
    transaction with the `kept` values (the simulated broker's account that gave the answers)."""
    stamp = {"run_id": run_id, "ts_ingested": recorded_at}
    rows = [
        _order_row(stamp, order, record.orders.get(order.client_order_id), record.refused.get(order.client_order_id))
        for order in orders
    ]
    state = KeptState(run_id, ENGINE_STATE_KEY, record.state, record.result.now)
    _record(warehouse, {"orders": rows}, [], [state, *kept], buffer)


def _record(
    warehouse: Warehouse,
    rows: Mapping[str, Sequence[dict[str, Any]]],
    closures: Sequence[dict[str, Any]],
    states: Sequence[KeptState],
    buffer: RecordBuffer | None,
) -> None:
    if buffer is None:
        _write(warehouse, {**rows, "engine_state": [state.row() for state in states]}, closures)
    else:
        buffer.add(rows, closures)
        for state in states:
            buffer.keep_state(state)


def _write(
    warehouse: Warehouse, rows: Mapping[str, Sequence[dict[str, Any]]], closures: Sequence[dict[str, Any]]
) -> None:
    """Upserts first, then the closing of trades, whose rows the upserts may have just opened."""
    with warehouse.connect() as con, in_transaction(con):
        for table, table_rows in rows.items():
            if table_rows:
                upsert_rows(con, table, _frame(table_rows))
        for closure in closures:
            con.execute(read_sql("record/close_trade"), closure)


def record_orders(
    warehouse: Warehouse,
    run_id: str,
    orders: Sequence[tuple[Order, BrokerOrder | None]],
    discrepancies: Sequence[Discrepancy],
    now: datetime,
    recorded_at: datetime,
) -> None:
    """Orders learned outside a cycle (found at the broker, or found never sent), with why."""
    stamp = {"run_id": run_id, "ts_ingested": recorded_at}
    with warehouse.connect() as con, in_transaction(con):
        if orders:
            upsert_rows(con, "orders", _frame(_order_row(stamp, order, view, None) for order, view in orders))
        if discrepancies:
            upsert_rows(con, "reconciliations", _frame(_discrepancy_row(stamp, now, d) for d in discrepancies))


def record_availability(warehouse: Warehouse, run_id: str, found: Sequence[Availability], checked_at: datetime) -> None:
    """Which strategies can decide on the run's data, and why the others cannot (run_strategies)."""
    rows = [
        {
            "run_id": run_id,
            "strategy": strategy.strategy,
            "can_run": strategy.can_run,
            "code": strategy.reason.code.value if strategy.reason else None,
            "detail": (strategy.reason.detail if strategy.reason else strategy.note) or None,
            "ts_ingested": checked_at,
        }
        for strategy in found
    ]
    with warehouse.connect() as con, in_transaction(con):
        upsert_rows(con, "run_strategies", _frame(rows))


def store_value(warehouse: Warehouse, run_id: str, key: str, value: Any, ts: datetime) -> None:
    """Keep a JSON value under `key` for the run (the regime model, the simulated account)."""
    with warehouse.connect() as con:
        upsert_rows(con, "engine_state", _frame([_state_row(run_id, key, value, ts)]))


def stored_value(warehouse: Warehouse, run_id: str, key: str) -> Any | None:
    with warehouse.connect() as con:
        row = con.execute(read_sql("read/engine_state"), {"run_id": run_id, "key": key}).fetchone()
    return None if row is None else json.loads(row[0])


def _state_row(run_id: str, key: str, value: Any, ts: datetime) -> dict[str, Any]:
    return {"run_id": run_id, "key": key, "value": json.dumps(value), "ts_updated": ts}


def _discrepancy_row(stamp: Mapping[str, Any], now: datetime, discrepancy: Discrepancy) -> dict[str, Any]:
    return {
        **stamp,
        "ts_event": now,
        "kind": discrepancy.kind,
        "subject": discrepancy.subject,
        "warehouse_value": discrepancy.warehouse_value,
        "broker_value": discrepancy.broker_value,
        "resolution": discrepancy.resolution,
    }


def cycle_rows(run_id: str, record: CycleRecord, recorded_at: datetime) -> dict[str, list[dict[str, Any]]]:
    result = record.result
    now = result.now
    stamp = {"run_id": run_id, "ts_ingested": recorded_at}
    regime = result.regime
    decisions = {d.proposal.proposal_id: d for d in result.decisions}
    ranked_ids = {r.proposal.proposal_id for r in result.ranked}
    tables: dict[str, list[dict[str, Any]]] = {
        "cycles": [
            {
                **stamp,
                "ts_event": now,
                "cycle_no": result.cycle_no,
                "regime": regime.regime.value,
                "regime_confidence": regime.confidence,
                "observation_only": result.observation_only,
                "trading_state": result.trading_state.value,
                "n_signals": len(result.signals),
                "n_proposals": len(result.ranked) + len(decisions.keys() - ranked_ids),
                "n_approved": sum(d.approved for d in result.decisions),
                "n_orders": len(result.orders),
                "decision_ms": record.decision_ms,
            }
        ],
        "regimes": [
            {
                **stamp,
                "ts_event": now,
                "regime": regime.regime.value,
                "confidence": regime.confidence,
                "probabilities": json.dumps({k.value: v for k, v in regime.probabilities.items()}),
                "evaluated": regime.evaluated,
                "changed": regime.changed,
                "model_version": regime.model_version,
                "reason": regime.reason,
            }
        ],
        "signals": [
            {
                **stamp,
                "signal_id": s.signal_id,
                "ts_event": now,
                "strategy": s.strategy,
                "symbol": s.symbol,
                "score": s.score,
                "confidence": s.confidence,
                "reliability": result.reliability.get(s.strategy, 0.5),
                "weight": _weight_of(result, s.signal_id),
                "source": s.source,
                "signal_ts": s.ts_event,
                "half_life_s": s.half_life.total_seconds(),
            }
            for s in result.signals
        ],
        "strategy_abstentions": [
            {
                **stamp,
                "ts_event": now,
                "strategy": strategy,
                "reason": str(reason),
                "code": reason.code.value,
                "detail": reason.detail or None,
            }
            for strategy, reason in result.abstentions.items()
        ],
        "cycle_readiness": [
            {
                **stamp,
                "ts_event": now,
                "subject": item.subject,
                "code": item.reason.code.value,
                "detail": item.reason.detail or None,
                "blocking": item.blocking,
                "ready_at": item.ready_at,
            }
            for item in result.readiness
        ],
        "proposals": [
            {
                **stamp,
                "proposal_id": r.proposal.proposal_id,
                "ts_event": now,
                "strategy": r.proposal.strategy,
                "symbol": r.proposal.symbol,
                "side": r.proposal.side.value,
                "entry": r.proposal.entry,
                "stop": r.proposal.stop,
                "target": r.proposal.target,
                "reward_risk": r.proposal.reward_risk,
                "horizon_s": r.proposal.horizon.total_seconds(),
                "confidence": r.proposal.confidence,
                "strategy_weight": r.strategy_weight,
                "expected_value": r.expected_value,
                "rank": r.rank,
                "regime": regime.regime.value,
                "signal_ids": list(r.proposal.signal_ids),
            }
            for r in result.ranked
        ],
        "risk_decisions": [
            {
                **stamp,
                "proposal_id": d.proposal.proposal_id,
                "ts_event": now,
                "approved": d.approved,
                "qty": d.qty,
                "notional": d.notional,
                "kelly_fraction": d.kelly_fraction,
                "vol_scale": d.vol_scale,
                "reasons": [str(reason) for reason in d.reasons],
                "reason_codes": [reason.code.value for reason in d.reasons],
                "reason_details": [reason.detail or None for reason in d.reasons],
            }
            for d in result.decisions
        ],
        "orders": [
            *(
                _order_row(stamp, o, record.orders.get(o.client_order_id), record.refused.get(o.client_order_id))
                for o in result.orders
            ),
            *(_order_row(stamp, order, view, None) for order, view in record.order_updates),
        ],
        "fills": [
            {
                **stamp,
                "fill_id": f.fill_id,
                "client_order_id": f.client_order_id,
                "ts_event": f.ts_event,
                "symbol": f.symbol,
                "side": f.side.value,
                "qty": f.qty,
                "price": f.price,
                "fee": f.fee,
            }
            for f in record.fills
        ],
        "trades": [_open_trade_row(stamp, p, regime.regime.value) for p in record.opened],
        "positions": [
            {
                **stamp,
                "ts_event": now,
                "symbol": symbol,
                "qty": holding.qty,
                "avg_entry_price": holding.avg_price,
                "market_price": record.book.last_price(symbol) or holding.avg_price,
                "market_value": holding.qty * (record.book.last_price(symbol) or holding.avg_price),
                "unrealized_pnl": record.book.unrealized_pnl(symbol),
            }
            for symbol, holding in sorted(record.book.holdings().items())
            if holding.qty != 0
        ],
        "equity": [
            {
                **stamp,
                "ts_event": now,
                "cash": record.book.cash,
                "positions_value": record.book.positions_value,
                "equity": record.book.equity,
                "gross_exposure": record.book.gross_exposure,
                "daily_pnl": record.state.risk.daily_pnl(record.book.equity) if record.state.risk else 0.0,
                "drawdown": record.state.risk.drawdown(record.book.equity) if record.state.risk else 0.0,
            }
        ],
        "strategy_weights": [
            {
                **stamp,
                "ts_event": u.ts_event,
                "strategy": u.strategy,
                "weight": u.weight,
                "win_rate": u.win_rate,
                "avg_rr": u.avg_rr,
                "n_trades": u.n_trades,
            }
            for u in record.weight_updates
        ],
        "kill_switch_events": [
            {
                **stamp,
                "ts_event": e.ts_event,
                "event": str(e.event),
                "reason": e.reason,
                "equity": e.equity,
                "daily_pnl": e.daily_pnl,
                "until_ts": e.until_ts,
            }
            for e in (*result.risk_events, *record.risk_events)
        ],
        "reconciliations": [_discrepancy_row(stamp, now, d) for d in record.reconciliations],
    }
    return tables


def _weight_of(result: CycleResult, signal_id: str) -> float:
    for view in result.aggregated:
        for contributor, weight in zip(view.signal_ids, view.weights, strict=True):
            if contributor == signal_id:
                return weight
    return 0.0  # dropped by aggregation: too stale or too unreliable to count


def _order_row(
    stamp: Mapping[str, Any], order: Order, seen: BrokerOrder | None, refused: OrderRefused | None
) -> dict[str, Any]:
    return {
        **stamp,
        "client_order_id": order.client_order_id,
        "ts_event": order.ts_event,
        "proposal_id": order.proposal_id,
        "trade_id": order.trade_id,
        "strategy": order.strategy,
        "symbol": order.symbol,
        "side": order.side.value,
        "intent": order.intent,
        "order_type": order.order_type,
        "time_in_force": seen.time_in_force if seen else "day",
        "qty": order.qty,
        "notional": None,
        "limit_price": order.limit_price,
        "stop_price": None,
        "decision_price": order.decision_price,
        "reason": order.reason or None,
        "broker_order_id": seen.broker_order_id if seen else None,
        "status": "refused" if refused else (seen.status.value if seen else "pending"),
        "status_reason": refused.reason if refused else (seen.status_reason if seen else None),
        "refusal_code": refused.code.value if refused else None,
        "refusal_kind": refused.kind.value if refused else None,
        "filled_qty": seen.filled_qty if seen else 0.0,
        "filled_avg_price": seen.filled_avg_price if seen else None,
        "submitted_at": seen.submitted_at if seen else None,
        "updated_at": seen.updated_at if seen else None,
    }


def _open_trade_row(stamp: Mapping[str, Any], position: ManagedPosition, regime: str) -> dict[str, Any]:
    return {
        **stamp,
        "trade_id": position.trade_id,
        "strategy": position.strategy,
        "symbol": position.symbol,
        "side": "long" if position.side.sign > 0 else "short",
        "qty": position.qty,
        "entry_ts": position.opened_at,
        "entry_price": position.entry,
        "stop": position.stop,
        "target": position.target,
        "trail_pct": position.trail_pct,
        "planned_rr": abs(position.target - position.entry) / position.risk_per_unit,
        "regime_at_entry": regime,
        "exit_ts": None,
        "exit_price": None,
        "exit_reason": None,
        "pnl": None,
        "fees": position.entry_fees,  # the entry fills' so far; each exit fill adds its own
        "realized_r": None,
        "status": "open",
    }


# Columns whose type cannot be inferred when every row of a batch holds an empty list (or only nulls).
LIST_COLUMNS = {
    "signal_ids": pl.List(pl.Utf8),
    "reasons": pl.List(pl.Utf8),
    "reason_codes": pl.List(pl.Utf8),
    "reason_details": pl.List(pl.Utf8),
}


def _frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame(list(rows), infer_schema_length=None)
    return frame.with_columns(pl.col(name).cast(kind) for name, kind in LIST_COLUMNS.items() if name in frame.columns)
