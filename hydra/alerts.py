"""Alerts: what a person must hear about, sent through a Prefect notification block and
recorded in the warehouse's `alerts` table whether or not the sending worked.

The block is configured by name (`alerts.block`, e.g. 'slack-webhook/ops'), so where alerts go
(Slack, a webhook, email) is set up in Prefect, with its secrets kept in Prefect's block store,
never in HYDRA's configuration. The same alert is not sent again within
`alerts.repeat_after_hours`: a feed that stays down alerts once per window, not once a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from core.snapshot import FeedHealth
from hydra.sources import SourceContext
from warehouse.load import upsert_rows
from warehouse.sqlfiles import read_sql

logger = logging.getLogger(__name__)
TIMESTAMP = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    message: str
    ts_event: datetime
    run_id: str | None = None


def feed_down_alerts(
    health: Mapping[str, FeedHealth], schedules: Mapping[str, int], factor: float, now: datetime
) -> list[Alert]:
    """Feeds whose last successful run is older than `factor` of their schedule intervals."""
    alerts = []
    for feed, interval in schedules.items():
        state = health.get(feed)
        if state is None:
            continue  # never run here: nothing to say about an outage
        tolerance = timedelta(seconds=interval * factor)
        if state.last_success is None or now - state.last_success > tolerance:
            since = "never" if state.last_success is None else state.last_success.isoformat()
            alerts.append(
                Alert(
                    "feed_down",
                    feed,
                    f"feed {feed} has not loaded since {since} (tolerance {tolerance}); last error: {state.error}",
                    now,
                )
            )
    return alerts


def raise_alerts(context: SourceContext, alerts: Iterable[Alert], recorded_at: datetime) -> list[Alert]:
    """Send and record each alert not already raised within the repeat window; returns those sent."""
    config = context.settings.alerts
    repeat = timedelta(hours=config.repeat_after_hours)
    raised = []
    rows = []
    for alert in alerts:
        with context.warehouse.connect(read_only=True) as con:
            params = {"kind": alert.kind, "subject": alert.subject, "since": alert.ts_event - repeat}
            (already,) = con.execute(read_sql("read/recent_alert"), params).fetchall()[0]
        if already:
            continue
        logger.error("alert %s %s: %s", alert.kind, alert.subject, alert.message)
        error = None if config.block is None else _notify(config.block, alert)
        rows.append(
            {
                "ts_event": alert.ts_event,
                "kind": alert.kind,
                "subject": alert.subject,
                "message": alert.message,
                "run_id": alert.run_id,
                "notified": config.block is not None and error is None,
                "notify_error": error,
                "ts_ingested": recorded_at,
            }
        )
        raised.append(alert)
    if rows:
        frame = pl.DataFrame(rows, schema_overrides={"ts_event": TIMESTAMP, "ts_ingested": TIMESTAMP})
        with context.warehouse.connect() as con:
            upsert_rows(
                con,
                "alerts",
                frame.with_columns(pl.col("run_id").cast(pl.String), pl.col("notify_error").cast(pl.String)),
            )
    return raised


def _notify(block_name: str, alert: Alert) -> str | None:
    """None when the block took the alert, else why not (a failing channel must not stop trading)."""
    from prefect.blocks.core import Block

    try:
        # Prefect's loader is typed to return a coroutine as well; called from sync code it is the block.
        block: Any = Block.load(block_name)
        block.notify(body=alert.message, subject=f"HYDRA {alert.kind}: {alert.subject}")
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None
