"""A fresh paper install on its first trading day (issue 16, item 6): the first ingestion
fetches the history a cycle reads, counted in sessions, and the first cycle decides with a known
regime or says exactly why it cannot trade yet, and when it will.

Every upstream is a local server in the source's real format: Alpaca's bars (tests/fake_feeds.py)
and Alpaca paper trading (tests/fake_alpaca.py) on one server; the feeds not served answer 404,
as a feed that is down would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from fake_alpaca import FakeAlpaca, trade_through
from fake_feeds import NOW, AlpacaBars, serve_bars, serve_binance
from pytest_httpserver import HTTPServer

from core.calendar import market_calendar
from flows.trade import trade
from hydra.context import load_context
from hydra.ingestion import ingest
from hydra.live import check_strategies
from hydra.readiness import history_held
from hydra.sources import FeedRequest, SourceContext, fetch_feed
from warehouse.migrate import migrate

pytestmark = pytest.mark.usefixtures("prefect_harness")
SESSIONS = market_calendar().equities


@pytest.fixture
def paper(alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    """A fresh paper install: the bars and the broker on one local server, every other feed too
    (where nothing answers it: such a feed fails, as one that is down does)."""
    serve_bars(alpaca_server, AlpacaBars(page_size=10_000))
    serve_binance(alpaca_server)
    FakeAlpaca(alpaca_server)  # after the bars' routes: it answers every other path
    trade_through(alpaca_server, monkeypatch)
    base = alpaca_server.url_for("").rstrip("/")
    monkeypatch.setenv("HYDRA_MODE", "paper")
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__BASE_URL", base)
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__MAX_RETRIES", "0")
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__EXTRA_SYMBOLS", "[]")
    monkeypatch.setenv("HYDRA_FEEDS__BINANCE__BASE_URL", base)
    monkeypatch.setenv("HYDRA_FEEDS__BINANCE__MAX_RETRIES", "0")
    return alpaca_server


def context() -> SourceContext:
    loaded = load_context()
    migrate(loaded.warehouse)
    return loaded


def first_bars(context: SourceContext) -> dict[tuple[str, str], datetime]:
    """The oldest bar the first fetch got of each symbol and timeframe."""
    result = fetch_feed(context, FeedRequest("bars", now=NOW))
    assert result.status == "ok", result.error
    oldest = result.batch.tables["bars"].group_by("symbol", "timeframe").agg(first="ts_event")
    return {(row["symbol"], row["timeframe"]): min(row["first"]) for row in oldest.iter_rows(named=True)}


@pytest.mark.parametrize("bar_sessions", [6, 2])
def test_the_first_fetch_of_a_symbol_gets_the_sessions_a_cycle_reads(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch, bar_sessions: int
) -> None:
    # It was 5 calendar days of minute bars (from Wednesday 15:00 on a Monday: 3.5 sessions of the
    # 6 a cycle reads) and 400 of daily bars (about 275 sessions of the 300), whatever the windows.
    monkeypatch.setenv("HYDRA_ENGINE__SNAPSHOT__BAR_SESSIONS", str(bar_sessions))

    oldest = first_bars(context())

    minute_start = SESSIONS.start_of_sessions_back(NOW, bar_sessions)  # an open: 6 sessions is Monday 11-30
    daily_day = SESSIONS.start_of_sessions_back(NOW, 300).date()
    daily_start = datetime(daily_day.year, daily_day.month, daily_day.day, 5, tzinfo=UTC)  # stamped midnight NY
    assert {first for (_, timeframe), first in oldest.items() if timeframe == "1Min"} == {minute_start}
    assert {first for (_, timeframe), first in oldest.items() if timeframe == "1Day"} == {daily_start}


def test_a_fresh_install_decides_on_its_first_day_with_a_known_regime_and_says_why_it_cannot_trade_yet(
    paper: HTTPServer,
) -> None:
    loaded = context()
    outcome = ingest(loaded, FeedRequest("bars", now=NOW))
    assert outcome.run.status == "ok", outcome.run.error
    assert [str(held) for held in history_held(loaded.warehouse, loaded.settings.engine, NOW)] == [
        "SPY 1Min bars: 6 of 6 sessions",
        # Friday's was the last daily bar: today's comes at the close. The fake's bars include holidays.
        f"SPY 1Day bars: {_weekdays(SESSIONS.start_of_sessions_back(NOW, 300), NOW)} of 299 sessions",
    ]

    summary = trade("paper", NOW)

    assert summary["status"] == "decided" and summary["orders"] == 0
    # The regime is read from the first cycle on (flat closes: no trend, no stress).
    assert summary["regime"] == "MEAN_REVERTING"
    with duckdb.connect("data/hydra.duckdb", read_only=True) as con:
        assert con.execute("SELECT model_version, reason FROM regimes").fetchall() == [
            ("rules-v2", "rules on prices and VIXY, HYG")
        ]
    # Exactly why no order can go out yet, and when it can: the feeds that were not ingested are named.
    assert summary["readiness"] == [
        "observation: 1 of 20 cycles; ready at 15:20 UTC",
        "liquidation_cascade: input_missing: funding_rates",
        "macro_event: input_missing: economic_events",
        "ai_disruption: input_missing: github_releases",
    ]

    status = subprocess.run(
        [sys.executable, "-m", "hydra.cli", "status"], capture_output=True, text=True, env=os.environ, check=False
    )
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    start = lines.index("trading readiness of paper-main")
    assert any(
        line.startswith("last cycle 2026-12-07 15:00:00") and "cycle 1, regime MEAN_REVERTING" in line
        for line in lines[start:]
    )
    # After the history held and the cycle, the same lines as the run's (the general ones first).
    assert lines[start + 4 : start + 5] == summary["readiness"][:1]
    assert sorted(lines[start + 4 :]) == sorted(summary["readiness"])


def test_a_first_cycle_without_daily_bars_says_how_many_sessions_the_regime_lacks(
    paper: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__TIMEFRAMES", '["1Min"]')
    loaded = context()
    assert ingest(loaded, FeedRequest("bars", now=NOW)).run.status == "ok"

    summary = trade("paper", NOW)

    # Six sessions of minute bars give six session closes; a regime needs 22. Sixteen sessions on,
    # the minute bars alone would do (2026-12-29, Christmas Day being a holiday).
    assert summary["readiness"][:2] == [
        "observation: 1 of 20 cycles; ready at 15:20 UTC",
        "regime: history_short: 6 of 22 sessions of SPY closes needed for any regime; ready after a backfill "
        "of its daily bars, or by itself at the close of 2026-12-29",
    ]


def _weekdays(first: datetime, until: datetime) -> int:
    day, count = first.date(), 0
    while day < until.date():
        count += day.weekday() < 5
        day += timedelta(days=1)
    return count


def test_which_strategies_can_run_is_checked_again_once_a_missing_feed_has_loaded(paper: HTTPServer) -> None:
    # The paper loop checked once, after the first ingestion: a feed that failed then left its
    # strategy "cannot run" for the whole session. It checks again while one waits for data.
    loaded = context()
    ingest(loaded, FeedRequest("bars", now=NOW))
    first = {found.strategy: found for found in check_strategies(loaded, "paper-main", NOW, NOW)}
    assert first["liquidation_cascade"].waits_for_data and not first["precious_metals"].waits_for_data

    ingest(loaded, FeedRequest("binance", now=NOW))
    again = {found.strategy: found for found in check_strategies(loaded, "paper-main", NOW, NOW)}

    assert again["liquidation_cascade"].can_run
    assert [name for name, found in again.items() if found.waits_for_data] == ["macro_event", "ai_disruption"]
