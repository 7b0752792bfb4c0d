"""Token buckets for the HTTP service: one per API key and one per client address.

A bucket holds up to `burst` tokens and gains `rate` tokens per second; a request takes one, and
an empty bucket answers how many seconds until the next token (HTTP 429, `Retry-After`). The
buckets live in the server process, the only state it keeps: with several processes each has its
own, so a client may send up to N times the limit to N processes (docs/verifier.md). Memory stays
bounded: the least recently seen buckets are dropped past `max_buckets` (a dropped bucket comes back
full, which only ever helps a client that made itself forgotten by flooding from many addresses).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

DEFAULT_MAX_BUCKETS = 10_000


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_buckets: int = DEFAULT_MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.burst = int(burst)
        self._max = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0 when `key` may go on (one token taken), else the seconds until it may."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
