"""One HTTP client for every requests-based feed: timeouts, bounded retries, typed errors.

Retries are written out rather than delegated to urllib3's Retry because urllib3 sleeps for
whatever Retry-After says, and a Binance 418 ban or a GitHub reset can say an hour: here a
wait longer than `max_wait_s` is not waited for, it becomes a RateLimited error and the
run is recorded as degraded. Nothing upstream can make a feed hang longer than
(max_retries + 1) x timeout + the waits, all bounded by configuration.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from adapters.config import EndpointConfig
from adapters.feed import FeedError, FeedUnavailable, MalformedResponse, RateLimited
from adapters.pacing import RequestPacer, shared_pacer

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
UNAVAILABLE_STATUS = frozenset({401, 403, 451})
RATE_LIMIT_STATUS = frozenset({418, 429})


@dataclass
class HttpClient:
    feed: str
    base_url: str
    user_agent: str
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 30.0
    # Every attempt, retries included, waits for its turn within the upstream's rate.
    pacer: RequestPacer | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, Any] | None = None,
        accept_status: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """The response to a 2xx (or an `accept_status`, e.g. 304), else a typed FeedError."""
        url = path if path.startswith("http") else self.base_url.rstrip("/") + path
        sent_headers = {"User-Agent": self.user_agent, **(headers or {})}
        attempt = 0
        while True:
            if self.pacer is not None:
                self.pacer.wait_turn()
            try:
                response = self.session.request(
                    method, url, params=params, headers=sent_headers, data=data, timeout=self.timeout_s
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt >= self.max_retries:
                    raise FeedUnavailable(self.feed, f"{method} {path}: {type(error).__name__}") from None
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            if 200 <= status < 300 or status in accept_status:
                return response
            if status in UNAVAILABLE_STATUS:
                raise FeedUnavailable(self.feed, f"{method} {path}: HTTP {status} {_reason(response)}")
            if status in RATE_LIMIT_STATUS:
                wait = rate_limit_wait_seconds(response)
                banned = status == 418
                if banned or attempt >= self.max_retries or (wait is not None and wait > self.max_wait_s):
                    raise RateLimited(self.feed, f"{method} {path}: HTTP {status}, retry after {wait}s", wait)
                self._sleep(wait if wait is not None else self._backoff(attempt))
                attempt += 1
                continue
            if status in RETRYABLE_STATUS and attempt < self.max_retries:
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            if status in RETRYABLE_STATUS:
                raise FeedUnavailable(self.feed, f"{method} {path}: HTTP {status} after {attempt + 1} tries")
            raise FeedError(self.feed, f"{method} {path}: HTTP {status} {_reason(response)}")

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return json_body(self.feed, self.request("GET", path, **kwargs))

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_s * (2**attempt) * random.uniform(0.5, 1.0), self.max_wait_s))

    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds))


def endpoint_client(
    feed: str, endpoint: EndpointConfig, user_agent: str, max_wait_s: float, pacer: RequestPacer | None = None
) -> HttpClient:
    return HttpClient(
        feed=feed,
        base_url=endpoint.base_url,
        user_agent=user_agent,
        timeout_s=endpoint.timeout_s,
        max_retries=endpoint.max_retries,
        max_wait_s=max_wait_s,
        pacer=pacer,
    )


def endpoint_pacer(endpoint: EndpointConfig) -> RequestPacer | None:
    """The shared pacer of an endpoint with a configured rate, else None."""
    if endpoint.requests_per_minute is None:
        return None
    return shared_pacer(endpoint.base_url, endpoint.requests_per_minute)


def json_body(feed: str, response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        # The query string is left out: some feeds (FRED) carry their API key in it.
        path = response.url.split("?", 1)[0]
        raise MalformedResponse(feed, f"{path}: body is not JSON", response.text[:100_000]) from None


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def rate_limit_wait_seconds(response: requests.Response) -> float | None:
    """How long a rate-limit answer (418/429) asks to wait: Retry-After, else the end of the
    limit's window as a Unix time (X-RateLimit-Reset: Alpaca says it so); None if neither.
    Only for such answers: GitHub stamps its reset on every response, refusals included."""
    stated = retry_after_seconds(response)
    reset = response.headers.get("X-RateLimit-Reset")
    if stated is not None or reset is None:
        return stated
    try:
        return max(0.0, float(reset) - time.time())
    except ValueError:
        return None


def _reason(response: requests.Response) -> str:
    return (response.text or response.reason or "")[:200].replace("\n", " ")
