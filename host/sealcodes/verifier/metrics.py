"""What a verifier server counts, in the Prometheus text format (prometheus-client).

One `Metrics` per server process. With several processes (`serve --workers N`) each writes its
figures to files of its own in one directory (prometheus-client's multiprocess mode, chosen by
`PROMETHEUS_MULTIPROC_DIR`, which the supervising process sets before it starts its workers);
whichever process answers a scrape sums the files of all of them, so the figures add up across
processes and survive a worker that was replaced. Counters and histograms of a dead worker stay
in the sum; its gauges leave it (`process_gone`).

No label ever holds an account, a key or anything a client sent: labels take only the fixed values
below (a route is the name of a known endpoint, never the path asked for).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

#: the variable prometheus-client reads, at import, to choose its multiprocess mode
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: seconds: an attempt at the default cost takes about 0.03 s alone and seconds when queued
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PREFIX = "sealcodes_verifier_"


class Metrics:
    """The figures of one server process; `exposition()` gives those of every process."""

    def __init__(self):
        self.directory = os.environ.get(MULTIPROCESS_DIR_ENV) or None
        #: this process's own figures (None in multiprocess mode: the values live in the files)
        self.registry = None if self.directory else CollectorRegistry()
        registry = self.registry
        self.verifies = Counter(PREFIX + "verifies", "Verify attempts answered, by result",
                                ["result"], registry=registry)
        self.latency = Histogram(PREFIX + "request_duration_seconds", "Time to answer a request, by endpoint",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.responses = Counter(PREFIX + "responses", "Answers by endpoint and HTTP status",
                                 ["route", "status"], registry=registry)
        self.hash_queue = Gauge(PREFIX + "hash_queue_depth", "Attempts waiting for a hash slot",
                                registry=registry, multiprocess_mode="livesum")
        self.hashing = Gauge(PREFIX + "hashes_running", "Attempts hashing now",
                             registry=registry, multiprocess_mode="livesum")
        self.hash_cpu = Counter(PREFIX + "hash_cpu_seconds", "CPU time of the attempts' hashing (Argon2id and "
                                "the stand-in calls), in seconds", registry=registry)
        self.imports = Counter(PREFIX + "imports", "Records taken over HTTP, by outcome (imported, unchanged, "
                               "forced)", ["outcome"], registry=registry)
        self.lockouts = Counter(PREFIX + "lockouts", "Accounts locked after too many failures", registry=registry)
        self.rate_limited = Counter(PREFIX + "rate_limited", "Requests refused with 429, by limit (key, address)",
                                    ["limit"], registry=registry)
        self.database_errors = Counter(PREFIX + "database_errors", "Requests answered 503: the database failed",
                                       registry=registry)
        self.reloads = Counter(PREFIX + "reloads", "Configuration reloads (SIGHUP), by outcome (ok, failed)",
                               ["outcome"], registry=registry)
        self.connections_closed = Counter(
            PREFIX + "connections_closed", "Connections the server closed without an answer, by reason (idle, "
            "slow_head, slow_body, address_cap)", ["reason"], registry=registry)
        self.processes = Gauge(PREFIX + "processes", "Server processes answering requests",
                               registry=registry, multiprocess_mode="livesum")
        self.processes.set(1)

    def hash_slots_changed(self, waiting: int, running: int) -> None:
        """For `core.HashSlots.on_change`."""
        self.hash_queue.set(waiting)
        self.hashing.set(running)

    def hashed(self, cpu_seconds: float) -> None:
        """For `core.HashSlots.on_hashed`."""
        self.hash_cpu.inc(max(0.0, cpu_seconds))

    def connection_closed(self, reason: str) -> None:
        """For `workers.run_server(on_closed=...)`."""
        self.connections_closed.labels(reason).inc()

    def exposition(self) -> bytes:
        return exposition(self.directory, self.registry)


def exposition(directory: str | None, registry: CollectorRegistry | None = None) -> bytes:
    """The text format: the sum over the processes writing to `directory`, or `registry`'s own."""
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


def process_gone(directory: str, pid: int) -> None:
    """A worker ended: its gauges leave the sums (its counters stay)."""
    multiprocess.mark_process_dead(pid, directory)


def make_directory() -> str:
    """A fresh, private directory for the workers' files: under $RUNTIME_DIRECTORY (systemd's
    RuntimeDirectory=) when there is one, else the temporary directory."""
    return tempfile.mkdtemp(prefix="sealcodes-metrics-", dir=os.environ.get("RUNTIME_DIRECTORY") or None)


def remove_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def serve_exposition(host: str, port: int, directory: str | None, registry: CollectorRegistry | None = None):
    """A plain HTTP listener answering GET /metrics (no key: give it an address only the scraper
    reaches); returns the server, which `shutdown()` stops."""
    from prometheus_client import start_http_server

    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
