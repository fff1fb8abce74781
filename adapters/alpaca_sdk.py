"""What alpaca-py's REST clients need to be safe to run unattended, for data and trading alike.

The SDK sends requests without a timeout, and retries HTTP 429/504 `_retry` times sleeping
`_retry_wait` seconds between tries (alpaca/common/rest.py); its constructors pass neither
setting through and read 0 as "the default", so both are set on the client directly.
"""

from __future__ import annotations

from typing import Any

import requests
from alpaca.common.rest import RESTClient


class TimedSession(requests.Session):
    """Every request gets a timeout: without one a hung connection hangs the cycle."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(*args, **kwargs)


def bound_client(client: RESTClient, session: requests.Session, max_retries: int, retry_wait_s: float) -> None:
    client._retry = max_retries
    # Annotated int in the SDK, but only ever handed to time.sleep, which takes a float.
    client._retry_wait = retry_wait_s  # type: ignore[assignment]
    client._session = session
