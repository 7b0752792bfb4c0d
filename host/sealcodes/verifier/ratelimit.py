"""Token buckets for the HTTP service: one per API key and one per client address; and caps on the
attempts one key, or one address, has in flight at once.

A bucket holds up to `burst` tokens and gains `rate` tokens per second; a request takes one, and
an empty bucket answers how many seconds until the next token (HTTP 429, `Retry-After`). The
buckets live in the server process, the only state it keeps: with several processes each has its
own, so a client may send up to N times the limit to N processes (docs/verifier.md). Memory stays
bounded: the least recently seen buckets are dropped past `max_buckets` (a dropped bucket comes back
full, which only ever helps a client that made itself forgotten by flooding from many addresses).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
import time
from collections import OrderedDict
from typing import AsyncIterator, Callable

DEFAULT_MAX_BUCKETS = 10_000
#: an IPv6 client is counted by its /64: one host is given a whole /64, i.e. 2^64 addresses
IPV6_CLIENT_PREFIX = 64


def client_key(host: str | None) -> str:
    """What the per-address limits count: the IPv4 address, or the IPv6 /64 (an IPv4-mapped IPv6
    address counts as its IPv4 address); any other text as it is."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


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


class InFlight:
    """At most `limit` requests at once per key (an API key id, a client address); a request over
    it waits its turn until its deadline, without holding anything meanwhile. Only keys with a
    request in flight or waiting are remembered. One event loop (the server's) uses it."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self._entries: dict[str, list] = {}  # key -> [semaphore, requests holding or waiting]

    @contextlib.asynccontextmanager
    async def slot(self, key: str, deadline: float) -> AsyncIterator[None]:
        """Hold one of `key`'s places; TimeoutError when none came free before `deadline`
        (time.monotonic())."""
        if self.limit <= 0:
            yield
            return
        entry = self._entries.setdefault(key, [asyncio.Semaphore(self.limit), 0])
        entry[1] += 1
        try:
            await asyncio.wait_for(entry[0].acquire(), max(0.0, deadline - time.monotonic()))
            try:
                yield
            finally:
                entry[0].release()
        finally:
            entry[1] -= 1
            if not entry[1]:
                self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
