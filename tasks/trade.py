"""Prefect tasks of a trading flow run; each is a thin call of hydra.live.

A cycle is not retried by Prefect: the next minute's run is the retry, and it resumes from
what the warehouse holds (the write-ahead orders included). Tasks take no cache: their
inputs are live sessions, which Prefect would otherwise try to hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.config import Mode
from hydra.alerts import Alert, raise_alerts
from hydra.live import TradingJob, adopt_unrecorded_orders, advance_sim_broker, decide, open_job, write_trade_log
from hydra.recording import CycleRecord, Discrepancy
from hydra.sources import SourceContext


@task(name="open-session", cache_policy=NO_CACHE)
def open_session(context: SourceContext, mode: Mode, run_id: str) -> TradingJob:
    return open_job(context, mode, run_id)


@task(name="reconcile", cache_policy=NO_CACHE)
def reconcile(job: TradingJob, now: datetime, recorded_at: datetime) -> list[Discrepancy]:
    """Bring the broker up to `now` (sim) and record the broker's orders no run recorded."""
    with job.context.warehouse.held():
        advance_sim_broker(job, now)
        return adopt_unrecorded_orders(job, now, recorded_at)


@task(name="decide", cache_policy=NO_CACHE, timeout_seconds=50)
def decide_and_submit(job: TradingJob, now: datetime, recorded_at: datetime) -> CycleRecord:
    """Fills and position reconciliation, the decision, the write-ahead record, the submissions."""
    with job.context.warehouse.held():
        return decide(job, now, recorded_at)


@task(name="publish", cache_policy=NO_CACHE)
def publish(job: TradingJob, record: CycleRecord) -> None:
    """Positions and decisions as table artifacts; the session's trade log, refreshed."""
    result = record.result
    positions = [
        {
            "symbol": symbol,
            "qty": holding.qty,
            "avg_price": holding.avg_price,
            "last": record.book.last_price(symbol),
            "unrealized_pnl": round(record.book.unrealized_pnl(symbol), 2),
        }
        for symbol, holding in sorted(record.book.holdings().items())
    ]
    create_table_artifact(
        key="trade-positions",
        table=positions or [{"symbol": "(flat)"}],
        description=f"{job.run_id} at {result.now.isoformat()}: equity {record.book.equity:,.2f}",
    )
    create_table_artifact(key="trade-decisions", table=decision_rows(record) or [{"proposal": "(none)"}])
    write_trade_log(job.context, job.run_id)


def decision_rows(record: CycleRecord) -> list[dict[str, Any]]:
    orders = {o.proposal_id: o for o in record.result.orders if o.proposal_id}
    rows = []
    for decision in record.result.decisions:
        proposal = decision.proposal
        order = orders.get(proposal.proposal_id)
        rows.append(
            {
                "strategy": proposal.strategy,
                "symbol": proposal.symbol,
                "side": proposal.side.value,
                "approved": decision.approved,
                "qty": round(decision.qty, 6),
                "reasons": "; ".join(str(reason) for reason in decision.reasons),
                "order": "" if order is None else _order_text(record, order.client_order_id),
            }
        )
    rows += [
        {
            "strategy": o.strategy,
            "symbol": o.symbol,
            "side": o.side.value,
            "approved": True,
            "qty": o.qty,
            "reasons": f"exit: {o.reason}",
            "order": _order_text(record, o.client_order_id),
        }
        for o in record.result.orders
        if o.intent == "exit"
    ]
    return rows


def _order_text(record: CycleRecord, client_order_id: str) -> str:
    """The order's client id, or why it was refused."""
    refusal = record.refused.get(client_order_id)
    return client_order_id if refusal is None else f"refused ({refusal.code.value}): {refusal.reason}"


@task(name="alert", cache_policy=NO_CACHE)
def alert(key: str, title: str, lines: list[str]) -> None:
    """A markdown artifact for what a person must look at (the kill switch, a broker failure)."""
    create_markdown_artifact(key=key, markdown="\n".join([f"# {title}", "", *(f"- {line}" for line in lines)]))


@task(name="notify", cache_policy=NO_CACHE)
def notify(context: SourceContext, alerts: list[Alert], recorded_at: datetime) -> int:
    """Send and record the cycle's alerts (each once per repeat window); how many went out."""
    return len(raise_alerts(context, alerts, recorded_at))
