"""Request pacing: a backfill's hundreds of pages stay within an upstream's documented rate.

An incremental run makes a handful of requests and is not paced; a backfill pages through
years and would otherwise send them as fast as the upstream answers, into its 429s (and,
at Binance, a 418 ban). A pacer admits at most `per_minute` requests in any sliding minute
and makes the next one wait for its turn. One pacer is shared by every client of the same
upstream in a process (`shared_pacer`), since the limit is the upstream's (per key or per
address), not the client's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

WINDOW_S = 60.0


@dataclass
class RequestPacer:
    per_minute: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    admitted: int = field(default=0, init=False)  # requests let through so far
    _sent: deque[float] = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError(f"a pacer admits at least one request a minute, not {self.per_minute}")

    def wait_turn(self) -> None:
        """Returns when one more request keeps the last minute within `per_minute`."""
        with self._lock:
            now = self.clock()
            while True:
                while self._sent and now - self._sent[0] >= WINDOW_S:
                    self._sent.popleft()
                if len(self._sent) < self.per_minute:
                    break
                self.sleep(WINDOW_S - (now - self._sent[0]))
                now = self.clock()
            self._sent.append(now)
            self.admitted += 1


@cache
def shared_pacer(upstream: str, per_minute: int) -> RequestPacer:
    """The process's one pacer for `upstream` (its base URL) at `per_minute`."""
    return RequestPacer(per_minute)
