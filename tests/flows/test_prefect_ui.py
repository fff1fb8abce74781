"""The Prefect UI, as its users see it: a real server on 127.0.0.1, deployments applied from
prefect.yaml, a trading and an ingestion run executed, and the UI rendered by headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PREFECT = str(Path(sys.executable).with_name("prefect"))
ARTIFACTS = Path(os.environ.get("HYDRA_TEST_ARTIFACTS", ROOT / "test-artifacts"))
RUN_FLOWS = """
from datetime import timedelta
from hydra.context import load_context
from hydra.jobs import ingest_simulated
from flows.ingest import ingest_bars
from flows.trade import trade
context = load_context()
start = context.settings.sim.start
ingest_simulated(context, start, start + timedelta(days=1))
assert trade("sim")["status"] == "decided"
assert ingest_bars(start + timedelta(days=1), start + timedelta(days=1, minutes=30))["status"] == "ok"
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's package)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": f"{url}/api",
        "PREFECT_UI_API_URL": f"{url}/api",  # the browser asks the UI's server, not the default port
        "HYDRA_HOME": str(ROOT),
    }
    process = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # the server takes more than 10 s to start here
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the Prefect server did not start within 120 s")
        yield url, environment
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def rendered(url: str, screenshot: Path | None = None) -> str:
    assert CHROMIUM is not None
    options = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", "--window-size=1400,1000"]
    if screenshot is not None:
        subprocess.run([CHROMIUM, *options, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    shown = subprocess.run([CHROMIUM, *options, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    return shown.stdout


def test_the_ui_shows_the_deployments_and_the_completed_runs_with_their_artifacts(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, environment = server
    hydra = {**environment, "HYDRA_SIM__WARMUP_SESSIONS": "0", "HYDRA_SIM__DAYS": "0.1"}
    subprocess.run([sys.executable, "-c", RUN_FLOWS], cwd=tmp_path, env=hydra, check=True, timeout=300)
    subprocess.run([PREFECT, "work-pool", "create", "hydra", "--type", "process"], env=environment, check=True)
    subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=environment, check=True, timeout=300)

    deployments = rendered(f"{url}/deployments")
    for name in ("ingest-bars", "trade", "report", "backtest-sweep"):
        assert name in deployments, name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    runs = rendered(f"{url}/runs", screenshot=ARTIFACTS / "prefect-ui-runs.png")
    assert "Completed" in runs and "trade" in runs and "ingest-bars" in runs
    artifacts = rendered(f"{url}/artifacts")
    assert "trade-positions" in artifacts and "ingest-bars" in artifacts
    assert (ARTIFACTS / "prefect-ui-runs.png").read_bytes()[:4] == b"\x89PNG"
