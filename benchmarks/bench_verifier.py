#!/usr/bin/env python3
"""The verifier against its baselines, side by side in one run.

1. verify throughput (SQLite, real Argon2id at the default m=19456 KiB, t=2, p=1) against raw
   Argon2id throughput at the same parameters (goal: >= 0.9x);
2. the same for sets of 10 and of 100 codes (goal: flat);
3. against a per-code-hash verifier written here (one Argon2id salt per code, the common design:
   an attempt hashes the typed code once per stored code until one matches);
4. exactly-once: 100 concurrent attempts with one valid code, on SQLite and PostgreSQL;
5. HTTP verify latency p50/p99 with 50 concurrent clients against `sealcodes verifier serve`
   (uvicorn on 127.0.0.1), on SQLite and PostgreSQL;
6. a refused attempt on an unknown account against one on a known account (wrong code, spent code,
   a code of a format the account does not use, an `hmac-sha256` account), median and p99 side by
   side: the answer and its time must not tell whether the account exists; once with the default
   Argon2id shape and once with a verifier whose policy has another shape (m=38912 KiB, t=1);
7. raw Argon2id of shapes of equal memory x passes, side by side: why padding to equal memory x
   passes did not give equal time, and why a verifier takes one shape only.

PostgreSQL is a throwaway cluster (initdb in a temporary directory, Unix socket only), started
with the test suite's helper. Loopback only; bounded run time (about a minute on 2 cores).

    python benchmarks/bench_verifier.py [--rounds N] [--attempts N] [--skip-postgres] [--skip-http]
"""

from __future__ import annotations

import argparse
import hmac
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "verifier"), str(ROOT / "tests")]

from sealcodes import derivation  # noqa: E402
from sealcodes.verifier import ACCEPTED, Policy, Verifier, open_store  # noqa: E402
from sealcodes.verifier.record import (  # noqa: E402
    DEFAULT_ITERATIONS,
    DEFAULT_LANES,
    DEFAULT_MEMORY_KIB,
    HashParams,
    digest_input,
    make_record,
)

PARAMS = HashParams.argon2id()
#: the non-default policy shape of section 6 (as much memory x passes as the default)
OTHER_SHAPE = HashParams.argon2id(38912, 1, 1)
#: shapes of equal memory x passes (38912) for section 7
EQUAL_COST_SHAPES = (PARAMS, HashParams.argon2id(9728, 4, 1), OTHER_SHAPE, HashParams.argon2id(19456, 2, 4))
#: the policy of every measure here: no limit in the way of the figures (the limits are tested)
OPEN = {"max_failures": 100, "delay_base_s": 0, "key_rate": 0, "address_rate": 0, "key_in_flight": 0,
        "address_in_flight": 0, "attempt_wait_s": 600}


def raw_argon2id_once(i: int, salt: bytes) -> None:
    Argon2id(salt=salt, length=32, iterations=DEFAULT_ITERATIONS, lanes=DEFAULT_LANES,
             memory_cost=DEFAULT_MEMORY_KIB).derive(b"sealcodes bench %d" % i)


def sets(count: int, accounts: int, tag: str):
    """`accounts` code sets of `count` codes each (distinct responses)."""
    return [derivation.derive(os.urandom(32), f"bench/{tag}/{a}", 0, "base32-16", count) for a in range(accounts)]


class OurVerifier:
    """Our Verifier on a SQLite file, with enough sets of `count` codes for `n` successful verifies."""

    def __init__(self, url: str, count: int, n: int):
        self.store = open_store(url)
        self.verifier = Verifier.initialise(self.store, Policy(**OPEN))
        code_sets = sets(count, max(1, -(-n // count)), f"tp{count}")
        for a, codes in enumerate(code_sets):
            self.verifier.import_record(make_record(codes, account=f"tp{count}-{a}", params=PARAMS))
        rng = random.Random(count)
        self.attempts = []
        for a, codes in enumerate(code_sets):
            order = list(codes.codes)
            rng.shuffle(order)  # codes are used in any order
            self.attempts += [(f"tp{count}-{a}", code) for code in order]

    def verify_next(self) -> None:
        account, code = self.attempts.pop(0)
        assert self.verifier.verify(account, code).outcome == ACCEPTED


class PerCodeHashVerifier:
    """The common design: each code stored as Argon2id with its own salt; an attempt hashes the
    typed code with the salt of each unused code until one matches (in memory, no database:
    the baseline's best case)."""

    def __init__(self, codes):
        self.entries = []
        for code in codes:
            salt = os.urandom(16)
            self.entries.append([salt, self._hash(salt, code), False])

    @staticmethod
    def _hash(salt, code):
        data = digest_input("base32-16", code.replace("-", ""))
        return Argon2id(salt=salt, length=32, iterations=DEFAULT_ITERATIONS, lanes=DEFAULT_LANES,
                        memory_cost=DEFAULT_MEMORY_KIB).derive(bytes(data))

    def verify(self, code) -> bool:
        for entry in self.entries:
            if not entry[2] and hmac.compare_digest(self._hash(entry[0], code), entry[1]):
                entry[2] = True
                return True
        return False


class PerCodeHits:
    """Successful attempts on the baseline with a set of 10 codes used in random order."""

    def __init__(self):
        self.rng = random.Random(10)
        self._refill()

    def _refill(self):
        codes = list(sets(10, 1, "baseline")[0].codes)
        self.baseline = PerCodeHashVerifier(codes)
        self.rng.shuffle(codes)
        self.pending = codes

    def verify_next(self):
        if not self.pending:
            self._refill()
        assert self.baseline.verify(self.pending.pop())


def interleaved(n: int, work: str) -> dict:
    """Seconds per operation (median), each kind measured in turn so machine load hits all alike."""
    ours10 = OurVerifier("sqlite:///" + os.path.join(work, "tp10.db"), 10, n)
    ours100 = OurVerifier("sqlite:///" + os.path.join(work, "tp100.db"), 100, n)
    hits = PerCodeHits()
    miss10 = PerCodeHashVerifier(sets(10, 1, "miss")[0].codes)
    wrong = sets(10, 1, "wrong")[0].codes
    salt = os.urandom(16)
    times = {"raw": [], "ours10": [], "ours100": [], "base_hit10": [], "base_miss10": []}
    operations = {
        "raw": lambda i: raw_argon2id_once(i, salt),
        "ours10": lambda i: ours10.verify_next(),
        "ours100": lambda i: ours100.verify_next(),
        "base_hit10": lambda i: hits.verify_next(),
        "base_miss10": lambda i: miss10.verify(wrong[i % 10]),
    }
    for i in range(n):
        for name, operation in operations.items():
            if name == "base_miss10" and i % 5:
                continue  # ten hashes each: fewer samples
            start = time.perf_counter()
            operation(i)
            times[name].append(time.perf_counter() - start)
    ours10.store.close()
    ours100.store.close()
    paired = {name: statistics.median(r / o for r, o in zip(times["raw"], times[name])) for name in ("ours10", "ours100")}
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: min(values) for name, values in times.items()}, paired)


def exactly_once(url: str) -> tuple[int, int]:
    store = open_store(url)
    verifier = Verifier.initialise(store, Policy(**OPEN))
    codes = sets(10, 1, "once")[0]
    verifier.import_record(make_record(codes, account="once", params=PARAMS))
    barrier = threading.Barrier(100)
    outcomes = []

    def attempt():
        barrier.wait()
        outcomes.append(verifier.verify("once", codes.codes[0]).outcome)

    threads = [threading.Thread(target=attempt) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    return outcomes.count(ACCEPTED), len(outcomes)


def http_latency(url: str, clients: int, per_client: int) -> tuple[float, float, float, int]:
    import httpx
    from _vsupport import VerifierServer

    store = open_store(url)
    # 50 clients on one address: no rate limit nor cap in flight here, the figure is about hashing
    verifier = Verifier.initialise(store, Policy(**OPEN))
    _, key = verifier.create_api_key("bench", "verify")
    code_sets = sets(per_client, clients, "http")
    for c, codes in enumerate(code_sets):
        verifier.import_record(make_record(codes, account=f"http-{c}", params=PARAMS))
    store.close()
    server = VerifierServer(url).start()
    latencies = []
    accepted = []
    barrier = threading.Barrier(clients)

    def client(c):
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            barrier.wait()
            for code in code_sets[c].codes:
                start = time.perf_counter()
                answer = http.post("/v1/verify", json={"account": f"http-{c}", "code": code}).json()
                latencies.append(time.perf_counter() - start)
                accepted.append(answer["result"] == ACCEPTED)

    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        wall = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall
    finally:
        server.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    return p50, p99, len(latencies) / wall, sum(accepted)


def unknown_vs_known(url: str, attempts: int, shape: HashParams = PARAMS) -> dict:
    """Seconds per refused attempt of each kind, the kinds measured in turn (so load hits all alike);
    every account is unlocked between attempts (outside the timing) so none is throttled. The
    verifier's policy takes `shape`, and every Argon2id record has it."""
    store = open_store(url)
    verifier = Verifier.initialise(store, Policy(memory_kib=shape.memory_kib, iterations=shape.iterations,
                                                 lanes=shape.lanes, **OPEN))
    argon = sets(3, 1, "enum")[0]
    fast = derivation.derive(os.urandom(32), "bench/enum/fast", 0, "base32-24", 3)
    verifier.import_record(make_record(argon, account="known", params=shape))
    verifier.import_record(make_record(argon, account="spent", params=shape))
    verifier.import_record(make_record(fast, account="fast", params=HashParams.hmac_sha256()))
    assert verifier.verify("spent", argon.codes[0]).outcome == ACCEPTED
    wrong = sets(1, 1, "enum-wrong")[0].codes[0]
    wrong_wide = derivation.derive(os.urandom(32), "bench/enum/wide", 0, "base32-24", 1).codes[0]
    kinds = {
        "unknown account": ("nobody", wrong),
        "known account, wrong code": ("known", wrong),
        "known account, spent code": ("spent", argon.codes[0]),
        "known account, code of another format": ("known", wrong_wide),
        "known hmac-sha256 account, wrong code": ("fast", wrong_wide),
    }
    times = {kind: [] for kind in kinds}
    answers = {kind: set() for kind in kinds}
    for _ in range(attempts):
        for kind, (account, code) in kinds.items():
            start = time.perf_counter()
            result = verifier.verify(account, code)
            times[kind].append(time.perf_counter() - start)
            answers[kind].add((result.outcome, result.retry_after))
            verifier.unlock(account)
    store.close()
    return {kind: (statistics.median(t), _p99(t), answers[kind]) for kind, t in times.items()}


def raw_shapes(rounds: int) -> dict:
    """Seconds per raw Argon2id call of each shape of EQUAL_COST_SHAPES, measured in turn."""
    times = {shape: [] for shape in EQUAL_COST_SHAPES}
    salt = os.urandom(16)
    for i in range(rounds):
        for shape in EQUAL_COST_SHAPES:
            start = time.perf_counter()
            Argon2id(salt=salt, length=32, iterations=shape.iterations, lanes=shape.lanes,
                     memory_cost=shape.memory_kib).derive(b"sealcodes bench %d" % i)
            times[shape].append(time.perf_counter() - start)
    return {shape: (statistics.median(t), _p99(t)) for shape, t in times.items()}


def _print_unknown_vs_known(figures: dict) -> None:
    base_median, base_p99, _ = figures["unknown account"]
    print("                                             median          p99        answer")
    for kind, (median, p99, answers) in figures.items():
        answer = ", ".join(sorted(f"{o} (retry_after {r:g})" for o, r in answers))
        ratio = "" if kind == "unknown account" else f"  ({median / base_median:.2f}x, {p99 / base_p99:.2f}x)"
        print(f"  {kind:<40} {median * 1000:7.1f} ms   {p99 * 1000:7.1f} ms   {answer}{ratio}")


def _p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="hashes/verifies per throughput figure")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--attempts", type=int, help="refused attempts per kind in 6 (default: 3 x rounds, >= 10)")
    args = parser.parse_args(argv)
    n = args.rounds
    work = tempfile.mkdtemp(prefix="sealcodes-bench-")
    sqlite = lambda name: "sqlite:///" + os.path.join(work, name + ".db")  # noqa: E731
    print(f"Argon2id m={DEFAULT_MEMORY_KIB} KiB t={DEFAULT_ITERATIONS} p={DEFAULT_LANES}; {os.cpu_count()} CPUs; "
          f"{n} operations per throughput figure")

    medians, best, paired = interleaved(n, work)
    rate = {name: 1 / seconds for name, seconds in medians.items()}
    top = {name: 1 / seconds for name, seconds in best.items()}
    raw = rate["raw"]
    print("\n1-2. verify throughput vs raw Argon2id (SQLite file; each verify consumes a code)")
    print("  (the machine may be shared: 'paired' is the median over rounds of raw time / verify time,")
    print("   each round timing both back to back, so load changes cancel)")
    print("                                  median       ratio   | best-of-run  ratio   | paired")
    for name, what in (("raw", "raw Argon2id"), ("ours10", "verify, set of 10 codes"),
                       ("ours100", "verify, set of 100 codes")):
        print(f"  {what:<30}  {rate[name]:6.1f} /s    {rate[name] / raw:.2f}x   | {top[name]:6.1f} /s    "
              f"{top[name] / top['raw']:.2f}x   | {paired.get(name, 1.0):.2f}x")
    print(f"  sets of 100 vs 10 codes: {rate['ours100'] / rate['ours10']:.2f}x (median), "
          f"{top['ours100'] / top['ours10']:.2f}x (best)")
    print("\n3. against a per-code-hash verifier (one salt per code, in memory, codes used in random order)")
    print(f"  per-code, set of 10, hits       {rate['base_hit10']:7.1f} /s   "
          f"ours {rate['ours10'] / rate['base_hit10']:.1f}x")
    print(f"  per-code, set of 10, misses     {rate['base_miss10']:7.1f} /s   "
          f"ours {rate['ours10'] / rate['base_miss10']:.1f}x (a miss costs us one hash too)")
    print(f"  per-code, set of 100, misses    {rate['base_miss10'] / 10:7.2f} /s   "
          f"ours {rate['ours100'] / (rate['base_miss10'] / 10):.1f}x (100 hashes per miss, from the 10-code figure)")

    print("\n4. exactly-once: 100 concurrent attempts with the same valid code")
    ok, total = exactly_once(sqlite("once"))
    print(f"  SQLite      {ok} success of {total}")
    postgres = None
    if not args.skip_postgres:
        from _vsupport import PostgresServer

        postgres = PostgresServer().start()
    try:
        if postgres is not None:
            ok, total = exactly_once(postgres.fresh_url())
            print(f"  PostgreSQL  {ok} success of {total}")
        if not args.skip_http:
            print(f"\n5. HTTP verify latency, {args.clients} concurrent clients x {args.per_client} verifies "
                  "(sealcodes verifier serve, uvicorn, loopback)")
            stores = [("SQLite", sqlite("http"))] + ([("PostgreSQL", postgres.fresh_url())] if postgres else [])
            for name, url in stores:
                p50, p99, rate, accepted = http_latency(url, args.clients, args.per_client)
                print(f"  {name:<11} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   {rate:6.1f} verifies/s   "
                      f"{accepted} accepted")
    finally:
        if postgres is not None:
            postgres.stop()

    attempts = args.attempts or max(10, 3 * n)
    print(f"\n6. a refused attempt: unknown account vs known accounts ({attempts} attempts each, SQLite, in process)")
    print(f"  policy shape m={PARAMS.memory_kib} KiB, t={PARAMS.iterations}, p={PARAMS.lanes} (the default):")
    _print_unknown_vs_known(unknown_vs_known(sqlite("enum"), attempts))
    print(f"  policy shape m={OTHER_SHAPE.memory_kib} KiB, t={OTHER_SHAPE.iterations}, p={OTHER_SHAPE.lanes} "
          "(another shape of the same memory x passes):")
    _print_unknown_vs_known(unknown_vs_known(sqlite("enum-other"), attempts, OTHER_SHAPE))

    print(f"\n7. raw Argon2id, shapes of equal memory x passes ({PARAMS.memory_kib * PARAMS.iterations}), "
          f"{attempts} calls each: what a set of another shape would have told")
    shapes = raw_shapes(attempts)
    base_median, base_p99 = shapes[PARAMS]
    print("                                             median          p99")
    for shape, (median, p99) in shapes.items():
        name = f"m={shape.memory_kib} KiB, t={shape.iterations}, p={shape.lanes}"
        ratio = "" if shape == PARAMS else f"  ({median / base_median:.2f}x, {p99 / base_p99:.2f}x)"
        print(f"  {name:<40} {median * 1000:7.1f} ms   {p99 * 1000:7.1f} ms{ratio}")


if __name__ == "__main__":
    main()
