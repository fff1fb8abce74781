"""Alerts go out through a Prefect notification block (here a webhook on 127.0.0.1) and are
recorded in the warehouse, once per repeat window, whether or not the channel works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from pytest_httpserver import HTTPServer
from werkzeug import Response

from core.snapshot import FeedHealth
from hydra.alerts import Alert, feed_down_alerts, raise_alerts
from hydra.context import load_context
from warehouse.migrate import migrate

pytestmark = pytest.mark.usefixtures("prefect_harness")
NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def recorded() -> list[tuple[object, ...]]:
    with duckdb.connect("data/hydra.duckdb", read_only=True) as con:
        return con.execute(
            "SELECT kind, subject, notified, notify_error IS NULL FROM alerts ORDER BY ts_event"
        ).fetchall()


def test_a_feed_is_down_once_its_last_success_is_older_than_its_tolerance() -> None:
    health = {
        "bars": FeedHealth("bars", NOW - timedelta(minutes=2), "ok", None),
        "binance": FeedHealth("binance", NOW - timedelta(minutes=16), "degraded", "HTTP 451"),
        "cme": FeedHealth("cme", None, "failed", "HTTP 403"),
    }
    alerts = feed_down_alerts(health, {"bars": 60, "binance": 300, "cme": 3600, "github": 600}, 3.0, NOW)
    assert [(a.kind, a.subject) for a in alerts] == [("feed_down", "binance"), ("feed_down", "cme")]
    assert "HTTP 451" in alerts[0].message and "never" in alerts[1].message


def test_an_alert_goes_through_the_configured_block_once_per_window(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    CustomWebhookNotificationBlock(
        name="hydra-test",
        url=httpserver.url_for("/hook"),
        json_data={"text": "{{subject}}: {{body}}"},
        allow_private_urls=True,
    ).save("hydra-test", overwrite=True)
    monkeypatch.setenv("HYDRA_ALERTS__BLOCK", "custom-webhook/hydra-test")
    context = load_context()
    migrate(context.warehouse)
    halted = Alert("kill_switch", "paper-main", "daily loss 5.2% > 5%", NOW, "paper-main")

    assert raise_alerts(context, [halted], NOW) == [halted]
    assert raise_alerts(context, [Alert("kill_switch", "paper-main", "again", NOW + timedelta(hours=1))], NOW) == []
    [(request, _)] = httpserver.log
    assert request.get_json() == {"text": "HYDRA kill_switch: paper-main: daily loss 5.2% > 5%"}
    assert recorded() == [("kill_switch", "paper-main", True, True)]


def test_a_failing_channel_is_recorded_and_never_stops_the_caller(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/hook").respond_with_response(Response("down", status=503))
    CustomWebhookNotificationBlock(
        name="hydra-down", url=httpserver.url_for("/hook"), json_data={"text": "{{body}}"}, allow_private_urls=True
    ).save("hydra-down", overwrite=True)
    monkeypatch.setenv("HYDRA_ALERTS__BLOCK", "custom-webhook/hydra-down")
    context = load_context()
    migrate(context.warehouse)
    raise_alerts(context, [Alert("broker_error", "paper-main", "Alpaca 503", NOW)], NOW)
    assert recorded() == [("broker_error", "paper-main", False, False)]


def test_without_a_block_alerts_are_recorded_and_logged() -> None:
    context = load_context()
    migrate(context.warehouse)
    raise_alerts(context, [Alert("feed_down", "cme", "cme has not loaded", NOW)], NOW)
    assert recorded() == [("feed_down", "cme", False, True)]
