"""Timing shared by the benchmark scripts (imported from their own folder, as `_store_v1` is)."""

from __future__ import annotations

import statistics
import time


def median_ms(fn, rounds: int) -> float:
    """The median wall time of `rounds` calls of fn(), in milliseconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
