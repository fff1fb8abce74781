"""Prefect as every `hydra` command uses it: its temporary server started with time to spare.

Without PREFECT_API_URL, Prefect starts a temporary server for the process the first time a flow
runs, and gives it 20 s by default; on a loaded machine (the first command after an install
imports and migrates Prefect's database) that was too little, and the flow ended in a long
traceback. HYDRA gives it STARTUP_TIMEOUT_S unless the user chose a value, and starts it before
the first flow, so a server that still cannot start is one line (`PrefectUnavailable`).
"""

from __future__ import annotations

import os

STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
STARTUP_TIMEOUT_S = 120


class PrefectUnavailable(Exception):
    """Prefect's temporary server did not start."""


def configure_prefect() -> None:
    """HYDRA's Prefect settings; must run before Prefect is imported, which reads them once."""
    os.environ.setdefault(STARTUP_TIMEOUT_ENV, str(STARTUP_TIMEOUT_S))


def start_prefect() -> None:
    """Start this process's temporary Prefect server now, when it uses one (no PREFECT_API_URL)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return  # a server of the user's, or none allowed: Prefect's own message applies
    try:
        SubprocessASGIServer().start()  # the instance every later flow of the process reuses
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        waited = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        raise PrefectUnavailable(
            f"Prefect's temporary server did not start within {waited} s ({first}); try again, "
            f"raise {STARTUP_TIMEOUT_ENV}, or run `prefect server start` and set PREFECT_API_URL"
        ) from None
