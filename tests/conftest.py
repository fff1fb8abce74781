"""Shared fixtures: every test runs in its own directory with no HYDRA settings inherited."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_feeds import FRED_KEY, REPO
from hypothesis import settings
from pytest_httpserver import HTTPServer

from warehouse import Warehouse
from warehouse.migrate import migrate

# Property tests draw the same examples on every machine, so `make test` (and CI) turns red only
# for a change of the code; HYPOTHESIS_PROFILE=search draws afresh, to look for new failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("search", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

SECRET_VARIABLES = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "FRED_API_KEY", "GITHUB_TOKEN")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No hydra.toml from the developer's directory, no HYDRA_* or key from their shell."""
    monkeypatch.chdir(tmp_path)
    for variable in list(os.environ):
        if variable.upper().startswith("HYDRA_") or variable in SECRET_VARIABLES:
            monkeypatch.delenv(variable)
    yield


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session: it takes 10-15 s to start here."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    created = Warehouse(tmp_path / "warehouse" / "hydra.duckdb", lock_deadline_s=5.0)
    migrate(created)
    return created


@pytest.fixture
def alpaca_server(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    """Alpaca's clients resolve the host to IPv4 here; a handler that raised fails its test."""
    yield httpserver_ipv4
    httpserver_ipv4.check_handler_errors()


@pytest.fixture
def paper(alpaca_server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    """Paper mode with every endpoint on one local server (alpaca_server) and paces too fast to
    wait on; the feeds' real formats are served by tests/fake_feeds.py."""
    base = alpaca_server.url_for("").rstrip("/")
    monkeypatch.setenv("HYDRA_MODE", "paper")
    for endpoint in ("ALPACA_DATA", "BINANCE", "CME", "SGE", "LBMA", "BLS", "FOMC", "FRED", "GITHUB", "CBOE"):
        monkeypatch.setenv(f"HYDRA_FEEDS__{endpoint}__BASE_URL", base)
        monkeypatch.setenv(f"HYDRA_FEEDS__{endpoint}__MAX_RETRIES", "0")
    for endpoint in ("ALPACA_DATA", "BINANCE", "FRED"):
        monkeypatch.setenv(f"HYDRA_FEEDS__{endpoint}__REQUESTS_PER_MINUTE", "100000")
    monkeypatch.setenv("HYDRA_FEEDS__MAX_WAIT_S", "1")
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__EXTRA_SYMBOLS", "[]")
    monkeypatch.setenv("HYDRA_FEEDS__ALPACA_DATA__RETRY_WAIT_S", "0")
    monkeypatch.setenv("HYDRA_FEEDS__GITHUB__REPOS", json.dumps([REPO]))
    monkeypatch.setenv("ALPACA_API_KEY", "PKTEST7Q2M4X9ZKEY")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "sk-test-3vN8wQpL0rT5yU2iO9aS")
    monkeypatch.setenv("FRED_API_KEY", FRED_KEY)
    return alpaca_server
