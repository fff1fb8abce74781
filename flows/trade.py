"""The minutely trading flow: reconcile -> read snapshot -> decide -> record -> submit -> publish.

One run is one cycle of the session's run (`<mode>-<trading.session>`), resumed from the
warehouse, so the run of the next minute carries on whatever this one did or failed to do.
The deployment has concurrency 1 with CANCEL_NEW: a run that overlaps a slow one is
cancelled, never queued behind it. Nothing here imports Great Expectations (ingestion's
validation does): a trading run starts in about the time Prefect itself takes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from core.config import Mode
from core.risk import RiskEventKind
from hydra.alerts import Alert, feed_down_alerts
from hydra.context import load_context
from hydra.live import DecisionAhead, decision_time, failure_kind, session_ahead, session_run_id, world_clock
from hydra.settings import load_settings
from hydra.trading import AlreadyDecided
from tasks.trade import alert, decide_and_submit, notify, open_session, publish, reconcile
from warehouse.migrate import migrate


@flow(name="trade")
def trade(mode: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """One trading cycle. `mode` overrides the configured one; `at` decides as of that time."""
    logger = get_run_logger()
    settings = load_settings()
    chosen = Mode(mode) if mode else settings.mode
    context = load_context(settings.model_copy(update={"mode": chosen}))
    migrate(context.warehouse)
    run_id = session_run_id(context.settings, chosen)
    recorded_at = datetime.now(UTC)
    try:
        world = world_clock(context, chosen, recorded_at)
        now = decision_time(chosen, at.astimezone(UTC) if at else None, world)
        job = open_session(context, chosen, run_id)
        ahead = session_ahead(run_id, job.session.state.last_cycle_at, world)
        if ahead is not None:
            raise ahead
        last = job.session.state.last_cycle_at
        if last is not None and now <= last:
            # Checked before any task runs: a task that raised would be logged as an error with its traceback.
            raise AlreadyDecided(f"run {run_id} already decided at {last.isoformat()}; not again at {now.isoformat()}")
        discrepancies = reconcile(job, now, recorded_at)
        record = decide_and_submit(job, now, recorded_at)
    except AlreadyDecided as already:
        logger.info("%s", already)
        return {"run_id": run_id, "status": "skipped", "reason": str(already)}
    except DecisionAhead as refused:
        logger.error("%s", refused)  # the caller's mistake: refused, nothing to alert anyone about
        raise
    except Exception as error:
        # The broker, the warehouse or the data failed: the run fails (the next minute's run
        # resumes from the warehouse) and a person is told what happened.
        what = failure_kind(error)
        logger.error("%s in run %s: %s", what.lower(), run_id, error)
        alert(f"trade-failed-{chosen.value}", f"{what} in {run_id}", [f"{type(error).__name__}: {error}"])
        kind = "broker_error" if what == "Broker error" else "cycle_failed"
        notify(context, [Alert(kind, run_id, f"{type(error).__name__}: {error}", recorded_at, run_id)], recorded_at)
        raise
    result = record.result
    for discrepancy in [*discrepancies, *record.reconciliations]:
        logger.warning("reconciled %s %s: %s", discrepancy.kind, discrepancy.subject, discrepancy.resolution)
    halts = [e for e in (*result.risk_events, *record.risk_events) if e.event is RiskEventKind.HALTED]
    if halts:
        lines = [f"{event.ts_event.isoformat()}: {event.reason} (equity {event.equity})" for event in halts]
        logger.error("kill switch in run %s: %s", run_id, "; ".join(event.reason for event in halts))
        alert(f"kill-switch-{chosen.value}", f"Kill switch tripped in {run_id}", lines)
    alerts = [
        *(Alert("kill_switch", run_id, event.reason, event.ts_event, run_id) for event in halts),
        *(
            Alert("reconciliation", d.subject, f"{d.kind}: {d.resolution}", now, run_id)
            for d in (*discrepancies, *record.reconciliations)
        ),
        *feed_down_alerts(
            record.feed_health,
            context.settings.feeds.schedules.model_dump(),
            context.settings.alerts.feed_down_intervals,
            now,
        ),
    ]
    notify(context, alerts, recorded_at)
    publish(job, record)
    summary = {
        "run_id": run_id,
        "status": "decided",
        "at": result.now.isoformat(),
        "cycle": result.cycle_no,
        "regime": result.regime.regime.value,
        "trading_state": result.trading_state.value,
        "orders": len(result.orders),
        "refused": len(record.refused),
        "fills": len(record.fills),
        "reconciled": len(discrepancies) + len(record.reconciliations),
        "equity": round(record.book.equity, 2),
        # What kept the cycle, or a strategy in it, from trading, and when it will be ready.
        "readiness": [str(item) for item in result.readiness],
        "timings_ms": {stage: round(ms, 1) for stage, ms in record.timings_ms.items()},
    }
    logger.info("cycle %s", summary)
    return summary
