#!/usr/bin/env python3
"""HTTP verify throughput of `sealcodes verifier serve` (one worker per CPU) against raw Argon2id on
all CPUs at the same parameters, side by side in one run, on SQLite and PostgreSQL; latency p50 and
p99 at 2 x CPUs and at 50 concurrent clients. Goal: throughput >= 0.9x raw.

Raw: one process per CPU hashes in a loop (Argon2id m=19456 KiB, t=2, p=1, the default). Each
HTTP figure is cut in `--chunks` runs of the load generator with a raw measurement before the first
and after each: a chunk's ratio is its verifies/s over the mean of the raw rates right before and
after it, and a figure's ratio is the median of its chunks' (their range beside it), so that other
work on a shared machine, which comes and goes, loads both sides of each ratio alike. HTTP: every request spends a real code (accepted), so
each does the whole attempt: API key, hash, the transaction that consumes the code, the audit row.
Beside the wall-clock ratio, "CPU ratio" is raw CPU time per hash over (server + client) CPU time
per verify: the share of the CPUs that goes to hashing, which other work on the machine does not
move. Last, the server's own CPU per verify (everything but the hash: HTTP, JSON, the key, the
database) is measured on sets of a 64 KiB Argon2id, and with the raw CPU per hash it gives the
most of the server's CPU that can go to hashing. The CPU ratio is also split in two factors with
the server's own count of its hashing CPU (/metrics, sealcodes_verifier_hash_cpu_seconds_total):
hashing's share of the CPU, and a hash's CPU inside the server against a raw one's.

The load generator is one asyncio process speaking plain HTTP/1.1 over one keep-alive connection
per client (no HTTP library), so it takes little of the CPUs the server needs; its CPU time, and
the server's, are printed beside each figure. PostgreSQL is a throwaway cluster (the test suite's
helper, Unix socket only).

    python benchmarks/bench_verifier_http.py [--verifies N] [--chunks N] [--raw-hashes N] [--hash-slots N]
                                             [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "verifier"), str(ROOT / "tests")]

from sealcodes import derivation  # noqa: E402
from sealcodes.verifier import Policy, Verifier, open_store  # noqa: E402
from sealcodes.verifier.core import usable_cpus  # noqa: E402
from sealcodes.verifier.record import (  # noqa: E402
    DEFAULT_ITERATIONS, DEFAULT_LANES, DEFAULT_MEMORY_KIB, HashParams, make_record)

from _vsupport import process_tree_cpu_seconds  # noqa: E402
from bench_verifier import raw_argon2id_once  # noqa: E402  (the same raw hash as bench_verifier.py)

#: the CPUs the server's default workers follow (this process's affinity)
CPUS = usable_cpus()
CODES_PER_SET = 100


def _hash_loop(count: int) -> float:
    """CPU seconds of `count` hashes."""
    salt = os.urandom(16)
    start = time.process_time()
    for i in range(count):
        raw_argon2id_once(i, salt)
    return time.process_time() - start


class Raw:
    """One hashing process per CPU, kept between measurements."""

    def __init__(self, per_process: int):
        self.per_process = per_process
        self.pool = multiprocessing.get_context("spawn").Pool(CPUS)
        self.pool.map(_hash_loop, [2] * CPUS)  # started and warm
        self.rates: list[float] = []

    def measure(self) -> tuple[float, float]:
        """(hashes per second on all CPUs, CPU seconds per hash)."""
        start = time.perf_counter()
        cpu = sum(self.pool.map(_hash_loop, [self.per_process] * CPUS))
        rate = CPUS * self.per_process / (time.perf_counter() - start)
        self.rates.append(rate)
        return rate, cpu / (CPUS * self.per_process)

    def close(self):
        self.pool.close()
        self.pool.join()


def prepare(url: str, template, accounts: int, shape: HashParams | None = None) -> str:
    """A database holding `accounts` accounts, each with the template's codes (of `shape`, by default
    the default Argon2id); returns a verify key."""
    shape = shape or HashParams.argon2id()
    store = open_store(url)
    # one load generator, one address, one key: no rate limit and no cap on attempts in flight
    verifier = Verifier.initialise(store, Policy(max_failures=100, delay_base_s=0, key_rate=0, address_rate=0,
                                                 key_in_flight=0, address_in_flight=0, memory_kib=shape.memory_kib,
                                                 iterations=shape.iterations, lanes=shape.lanes))
    _, key = verifier.create_api_key("bench", "verify")
    for n in range(accounts):
        verifier.import_record(dataclasses.replace(template, account=f"acct-{n}"))
    store.close()
    return key


# --- the load generator (a process of its own) -------------------------------------------------

async def _client(host, port, key, work, latencies, results):
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST /v1/verify HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    try:
        for account, code in work:
            body = json.dumps({"account": account, "code": code}).encode()
            start = time.perf_counter()
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in status_and_headers.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            answer = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            results.append(status_and_headers.startswith(b"HTTP/1.1 200") and b'"accepted"' in answer)
    finally:
        writer.close()


async def _generate(host, port, key, plan):
    latencies, results = [], []
    start = time.perf_counter()
    await asyncio.gather(*(_client(host, port, key, work, latencies, results) for work in plan))
    return time.perf_counter() - start, latencies, results


def load_generator_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    start = resource.getrusage(resource.RUSAGE_SELF)  # the load's CPU time, not the interpreter's start
    wall, latencies, results = asyncio.run(_generate(spec["host"], spec["port"], spec["key"], spec["plan"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - start.ru_utime - start.ru_stime
    print(json.dumps({"wall": wall, "latencies": latencies, "accepted": sum(results), "requests": len(results),
                      "cpu": cpu}))


def run_load(server, key, plan, work_dir) -> dict:
    spec = Path(work_dir) / "load.json"
    spec.write_text(json.dumps({"host": "127.0.0.1", "port": server.port, "key": key, "plan": plan}))
    done = subprocess.run([sys.executable, __file__, "--load-generator", str(spec)], capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError("the load generator failed: " + done.stderr[-2000:])
    return json.loads(done.stdout)


def hash_cpu_seconds(port: int) -> float:
    """The server's own count of its CPU time in hashing, summed over its processes (/metrics)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("sealcodes_verifier_hash_cpu_seconds_total "):
                return float(line.split()[1])
    raise RuntimeError("the server's /metrics has no sealcodes_verifier_hash_cpu_seconds_total")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


@dataclasses.dataclass
class Figure:
    """One concurrency level: its chunks, each against raw Argon2id right before and after it."""

    clients: int
    requests: int = 0
    accepted: int = 0
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    #: of server_cpu, the hashing's (the server's own count: /metrics)
    server_hash_cpu: float = 0.0
    latencies: list = dataclasses.field(default_factory=list)
    #: per chunk: (verifies/s, raw hashes/s, raw CPU s per hash)
    chunks: list = dataclasses.field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return sorted(rate / raw for rate, raw, _ in self.chunks)

    @property
    def hash_cpu(self) -> float:
        return statistics.mean(cpu for _, _, cpu in self.chunks)


def measure(url, template, clients_levels, verifies, work_dir, workers, raw, hash_slots=None, chunks=8,
            shape=None):
    """For each concurrency a Figure: the verifies cut in `chunks` runs of the load generator, raw
    Argon2id measured before the first and after each, so that other work on the machine, which
    comes and goes, falls on both sides of each ratio alike."""
    from _vsupport import VerifierServer, free_port

    needed = sum(max(verifies, clients * chunks) + clients for clients in clients_levels)
    accounts = -(-needed // CODES_PER_SET)
    key = prepare(url, template, accounts, shape)
    pairs = [(f"acct-{n}", code) for n in range(accounts) for code in CODES]
    metrics_port = free_port()
    server = VerifierServer(url, workers=workers, args=("--metrics-listen", f"127.0.0.1:{metrics_port}")
                            + (("--hash-slots", str(hash_slots)) if hash_slots else ())).start()
    figures = []
    try:
        for clients in clients_levels:
            warm, pairs = pairs[:clients], pairs[clients:]
            run_load(server, key, [[pair] for pair in warm], work_dir)  # connections, pools, first hashes
            figure = Figure(clients)
            before = raw.measure()
            count = max(verifies, clients * chunks) // chunks
            for _ in range(chunks):
                batch, pairs = pairs[:count], pairs[count:]
                plan = [batch[c::clients] for c in range(clients)]
                server_before = process_tree_cpu_seconds(server.process.pid)
                hashed_before = hash_cpu_seconds(metrics_port)
                result = run_load(server, key, plan, work_dir)
                figure.server_cpu += process_tree_cpu_seconds(server.process.pid) - server_before
                figure.server_hash_cpu += hash_cpu_seconds(metrics_port) - hashed_before
                after = raw.measure()
                figure.chunks.append((result["requests"] / result["wall"], (before[0] + after[0]) / 2,
                                      (before[1] + after[1]) / 2))
                before = after
                figure.requests += result["requests"]
                figure.accepted += result["accepted"]
                figure.wall += result["wall"]
                figure.client_cpu += result["cpu"]
                figure.latencies += result["latencies"]
            figures.append(figure)
    finally:
        server.stop()
    return figures


CODES: tuple = ()


def main(argv=None):
    global CODES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifies", type=int, default=400, help="verifies timed per concurrency level")
    parser.add_argument("--raw-hashes", type=int, default=20, help="hashes per CPU for each raw measurement")
    parser.add_argument("--chunks", type=int, default=8, help="runs of the load generator per figure, raw "
                                                              "Argon2id measured between them")
    parser.add_argument("--workers", type=int, default=CPUS, help="serve --workers (default: one per CPU)")
    parser.add_argument("--hash-slots", type=int, help="serve --hash-slots (default: serve's, one per CPU)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--load-generator", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_generator:
        load_generator_main(args.load_generator)
        return
    work = tempfile.mkdtemp(prefix="sealcodes-bench-http-")
    levels = [2 * CPUS, 50]
    print(f"Argon2id m={DEFAULT_MEMORY_KIB} KiB t={DEFAULT_ITERATIONS} p={DEFAULT_LANES}; {CPUS} CPUs; "
          f"serve --workers {args.workers} --hash-slots {args.hash_slots or CPUS}; {args.verifies} verifies per figure, each spending a real code")
    codes = derivation.derive(os.urandom(32), "bench/http", 0, "base32-16", CODES_PER_SET)
    CODES = tuple(codes.codes)
    template = make_record(codes, account="template", params=HashParams.argon2id())
    raw = Raw(args.raw_hashes)
    stores = [("SQLite", lambda: "sqlite:///" + os.path.join(work, "http.db"))]
    postgres = None
    if not args.skip_postgres:
        from _vsupport import PostgresServer

        postgres = PostgresServer().start()
        stores.append(("PostgreSQL", postgres.fresh_url))
    results = {}
    try:
        for name, url in stores:
            results[name] = measure(url(), template, levels, args.verifies, work, args.workers, raw, args.hash_slots,
                                    args.chunks)
        # the server's own CPU per verify: the same load on sets of a 64 KiB Argon2id (0.1 ms)
        cheap = HashParams.argon2id(64, 1, 1)
        overhead = measure("sqlite:///" + os.path.join(work, "cheap.db"),
                           make_record(codes, account="template", params=cheap), [2 * CPUS], args.verifies, work,
                           args.workers, raw, args.hash_slots, 1, cheap)[0]
    finally:
        raw.close()
        if postgres is not None:
            postgres.stop()
    print(f"\nraw Argon2id, {CPUS} hashing processes: {min(raw.rates):.1f} to {max(raw.rates):.1f} hashes/s over the run")
    print(f"\nHTTP verify (accepted codes), in {args.chunks} chunks a figure, each against raw Argon2id measured right "
          "before and after it; one async client process")
    print("  store        clients  verifies/s  raw /s   ratio (chunks: median, range)   CPU ratio   p50         p99   "
          "     accepted   client CPU  server CPU")
    for name, figures in results.items():
        for f in figures:
            ratios = f.ratios
            rate, base = f.requests / f.wall, statistics.mean(raw for _, raw, _ in f.chunks)
            cpu_ratio = f.hash_cpu * f.requests / (f.client_cpu + f.server_cpu)
            print(f"  {name:<11}  {f.clients:>5}   {rate:8.1f}   {base:6.1f}   {statistics.median(ratios):.2f}x "
                  f"({ratios[0]:.2f}-{ratios[-1]:.2f})             {cpu_ratio:.2f}x    "
                  f"{statistics.median(f.latencies) * 1000:7.1f} ms  {percentile(f.latencies, 0.99) * 1000:7.1f} ms   "
                  f"{f.accepted:>4}/{f.requests:<4}   {f.client_cpu:6.2f} s    {f.server_cpu:6.2f} s")
    # the CPU ratio in two factors: how much of the CPU the server's hashing gets, and how its
    # hashes cost against raw ones (a hash slowed by what shares the CPUs and caches with it)
    print("\nthe CPU ratio's two factors: hashing's share of the server's and client's CPU; a hash's CPU in the server "
          "(its own count, /metrics) against a raw one")
    print("  store        clients  hashing share   hash CPU: server    raw      server/raw")
    for name, figures in results.items():
        for f in figures:
            share = f.server_hash_cpu / (f.client_cpu + f.server_cpu)
            inside = f.server_hash_cpu / f.requests
            print(f"  {name:<11}  {f.clients:>5}      {share:.2f}          {inside * 1000:7.2f} ms  "
                  f"{f.hash_cpu * 1000:6.2f} ms    {inside / f.hash_cpu:.2f}x")
    beyond = overhead.server_cpu / overhead.requests
    hashing = statistics.mean(cpu for f in results["SQLite"] for _, _, cpu in f.chunks)
    print(f"\nthe server's CPU per verify beyond the hash (SQLite, {2 * CPUS} clients, sets of a 64 KiB Argon2id): "
          f"{beyond * 1000:.2f} ms; raw CPU per default hash {hashing * 1000:.2f} ms: at most "
          f"{hashing / (hashing + beyond):.2f}x of the server's CPU can go to hashing")


if __name__ == "__main__":
    main()
