"""Prefect's temporary server: every command gives it HYDRA's generous startup time, and one
that still cannot start is one line with its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydra.cli import EXIT_PREFECT
from hydra.orchestration import STARTUP_TIMEOUT_ENV, STARTUP_TIMEOUT_S, configure_prefect

HYDRA = str(Path(sys.executable).with_name("hydra"))


def test_hydra_gives_the_server_its_startup_time_unless_the_user_chose_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STARTUP_TIMEOUT_ENV, raising=False)
    configure_prefect()
    assert os.environ[STARTUP_TIMEOUT_ENV] == str(STARTUP_TIMEOUT_S) == "120"
    monkeypatch.setenv(STARTUP_TIMEOUT_ENV, "300")
    configure_prefect()
    assert os.environ[STARTUP_TIMEOUT_ENV] == "300"


@pytest.mark.parametrize("command", [["trade", "--once", "--mode", "sim"], ["ingest", "vol_credit"]])
def test_a_server_that_does_not_start_in_time_is_one_line(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run(
        [HYDRA, *command],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, STARTUP_TIMEOUT_ENV: "0", "COLUMNS": "200"},  # a start no server can make
    )
    assert done.returncode == EXIT_PREFECT == 7, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("hydra: Prefect's temporary server did not start within 0 s")
    assert STARTUP_TIMEOUT_ENV in lines[0]
