#!/usr/bin/env python3
"""The verifier with a million accounts on PostgreSQL, figures side by side with their baselines.

Each size (by default 1,000, 100,000 and 1,000,000 accounts of 10 codes each) is its own database
(a schema of one PostgreSQL cluster), filled through the real command, `sealcodes verifier import
--bulk` (a server pepper, as in production). Bulk records carry random digests: a verifier cannot
tell them from real ones. The accounts attempted carry real codes (cheap Argon2id, m=64 KiB, so
that a verify's time is the database's share; the default Argon2id adds its own constant, printed
beside it) and are spread evenly through the import, as real ones would be. It prints:

1. the import rate (records/s) of each size, record v1; and of a sample of record v2 (each
   commitment checked as a point of the prime-order group);
2. the database size per account at each size;
3. verify p50/p99 (accepted codes, and attempts on an unknown account) at each size, and the
   ratio of the largest size to the smallest (goal: flat, <= 1.1x);
4. `status`, `audit` and the start-up checks of every process at each size, and at the largest the
   EXPLAIN (ANALYZE) of every statement they run and of every statement of a verify (logged by
   auto_explain as the server runs them, buffers touched included), showing the indexes used.

The sizes are measured under the same conditions, as an operator has them: every import finished
and the database settled (VACUUM ANALYZE, CHECKPOINT, what autovacuum and the checkpointer do after
a bulk import). The timings then alternate between the sizes, attempt by attempt (in a rotating
order), so that whatever else the machine does at the time falls on every size alike: on a
machine whose CPUs are all busy, each wake-up of the client or the database may wait for a
scheduler tick (4 ms), which is then most of a verify's time at any size. The load average at
the start and end of the timings is printed with them.

PostgreSQL is a throwaway cluster (initdb in a temporary directory, Unix socket only) with fsync
on, shared_buffers=256MB, max_wal_size=4GB. 5 to 8 minutes on 2 cores at the default size.

    python benchmarks/bench_verifier_scale.py [--accounts N] [--attempts N] [--v2-sample N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "verifier"), str(ROOT / "tests")]

from _support import console_script  # noqa: E402
from _vsupport import PostgresServer, random_record_line  # noqa: E402
from sealcodes import derivation  # noqa: E402
from sealcodes.verifier import ACCEPTED, REJECTED, Verifier, open_store  # noqa: E402
from sealcodes.verifier.postgres import PostgresStore  # noqa: E402
from sealcodes.verifier.record import HashParams, code_digest, make_record  # noqa: E402

PARAMS = HashParams.argon2id(64, 1, 1)
CODES = 10
CLUSTER = {"fsync": "on", "shared_buffers": "256MB", "max_wal_size": "4GB", "max_connections": "50"}
TABLES = ("code_sets", "codes", "accounts", "audit")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Bench:
    """One size: its own schema, pepper and attempted accounts."""

    def __init__(self, url: str, work: str, batch_size: int, attempted: list):
        self.url, self.work, self.batch_size, self.attempted = url, work, batch_size, attempted
        os.makedirs(work)
        self.schema = url.rsplit("search_path%3D", 1)[1]
        self.pepper = os.path.join(work, "pepper")
        self.rng = random.Random(2024)
        self.cli("init", "--argon2", "64/1/1", "--max-failures", "100", "--delay-base", "0",
                 "--create-pepper", self.pepper, pepper=False)
        with open(self.pepper) as handle:
            self.verifier = Verifier(open_store(url), pepper=[bytes.fromhex(handle.read().strip())])

    def cli(self, *args, pepper=True):
        argv = [console_script("sealcodes"), "verifier", "--db", self.url]
        if pepper:
            argv += ["--pepper-file", self.pepper]
        result = subprocess.run([*argv, *args], capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"sealcodes verifier {args[0]} failed: {result.stderr.strip()}")
        return result

    def sql(self, statement, params=()):
        return self.verifier.store._fetch(statement, params)

    def settle(self):
        """VACUUM ANALYZE and CHECKPOINT: what autovacuum and the checkpointer do after a large
        import, done now so that they do not run during the timings."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("VACUUM (ANALYZE)")
            connection.execute("CHECKPOINT")

    def import_file(self, lines) -> tuple[int, float, str]:
        """Write the records to a file, import it with the CLI; (records, seconds, last progress line)."""
        path = os.path.join(self.work, "records.jsonl")
        count = 0
        with open(path, "w") as handle:
            for line in lines:
                handle.write(line + "\n")
                count += 1
        start = time.perf_counter()
        result = self.cli("import", "--bulk", "--batch-size", str(self.batch_size), path)
        seconds = time.perf_counter() - start
        os.unlink(path)
        return count, seconds, result.stderr.strip().splitlines()[-1]

    def filler(self, count: int):
        """`count` bulk records, with the attempted accounts' records spread evenly among them."""
        total = count + len(self.attempted)
        step = total // len(self.attempted)
        for i in range(total):
            a, rest = divmod(i, step)
            if rest == 0 and a < len(self.attempted):
                yield self.attempted[a][2].to_json()
            else:
                yield random_record_line(f"user{i:07d}@corp.example", count=CODES, rng=self.rng)

    def size(self) -> dict:
        rows = self.sql("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", (self.schema,))
        return dict(rows)


def real_accounts(count: int):
    """Accounts with real codes, their codes and their record: (account, codes, record)."""
    found = []
    for a in range(count):
        response = os.urandom(32)
        account = f"attempt{a:04d}@corp.example"
        codes = derivation.derive(response, account, 0, "base32-16", CODES)
        found.append((account, codes, make_record(codes, account=account, params=PARAMS,
                                                  response=bytearray(response))))
    return found


def rotations(count: int, rounds: int):
    """The indexes 0..count-1 in a rotating order, `rounds` times: the timings of the sizes
    alternate, each size first as often as the others."""
    for r in range(rounds):
        yield r, [(r + k) % count for k in range(count)]


def time_verifies(benches) -> list[tuple[list[float], list[float]]]:
    """For each bench: seconds per accepted verify (every code of its attempted accounts, in turn)
    and per attempt on an unknown account (as many), the benches taking turns attempt by attempt."""
    times = [([], []) for _ in benches]
    wrong = derivation.derive(os.urandom(32), "nobody", 0, "base32-16", 1).codes[0]
    per_bench = len(benches[0].attempted)
    for r, order in rotations(len(benches), CODES * per_bench):
        i, a = divmod(r, per_bench)
        for b in order:
            verifier, (account, codes, _) = benches[b].verifier, benches[b].attempted[a]
            accepted, unknown = times[b]
            start = time.perf_counter()
            result = verifier.verify(account, codes.codes[i])
            accepted.append(time.perf_counter() - start)
            assert result.outcome == ACCEPTED, result
            start = time.perf_counter()
            result = verifier.verify(f"unknown-{i}-{account}", wrong)
            unknown.append(time.perf_counter() - start)
            assert result.outcome == REJECTED, result
    return times


def time_start(benches, rounds: int = 10) -> list[float]:
    """For each bench, median seconds for a process's start-up checks (schema, peppers of active
    sets, policy), which every CLI command, PAM helper run and server start makes."""
    stores = [open_store(bench.url) for bench in benches]
    peppers = [bench.verifier._peppers.values() for bench in benches]
    for store, pepper in zip(stores, peppers):
        Verifier(store, pepper=pepper)  # the pool's connections opened first, outside the timing
    times = [[] for _ in benches]
    for _, order in rotations(len(benches), rounds):
        for b in order:
            start = time.perf_counter()
            Verifier(stores[b], pepper=peppers[b])
            times[b].append(time.perf_counter() - start)
    for store in stores:
        store.close()
    return [statistics.median(t) for t in times]


def time_admin(benches, rounds: int = 3) -> list[tuple[float, float]]:
    status, audit = [[] for _ in benches], [[] for _ in benches]
    per_bench = len(benches[0].attempted)
    for r, order in rotations(len(benches), rounds * per_bench):
        for b in order:
            verifier, (account, _, _) = benches[b].verifier, benches[b].attempted[r % per_bench]
            start = time.perf_counter()
            verifier.status(account)
            status[b].append(time.perf_counter() - start)
            start = time.perf_counter()
            verifier.audit(account, limit=100)
            audit[b].append(time.perf_counter() - start)
    return [(statistics.median(s), statistics.median(a)) for s, a in zip(status, audit)]


class ExplainingStore(PostgresStore):
    """The store, running EXPLAIN (ANALYZE) on each read it makes outside a transaction (what
    `status` and `audit` run), so the plans shown are those of the real statements."""

    plans: list

    def _fetch(self, statement, params=()):
        with self._connection() as connection:
            plan = connection.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + self.sql(statement),
                                      tuple(params)).fetchall()
        self.plans.append((statement, [row[0] for row in plan]))
        return super()._fetch(statement, params)


def explain(url, pepper_path, account):
    store = ExplainingStore(url)
    store.plans = []
    with open(pepper_path) as handle:
        verifier = Verifier(store, pepper=[bytes.fromhex(handle.read().strip())])
    shown = []
    for what, call in (("start-up checks", lambda: Verifier(store, pepper=verifier._peppers.values())),
                       ("status", lambda: verifier.status(account)),
                       ("audit ACCOUNT", lambda: verifier.audit(account, limit=100)),
                       ("audit (all accounts, newest 100)", lambda: verifier.audit(None, limit=100))):
        store.plans = []
        call()
        shown.append((what, list(store.plans)))
    store.close()
    return shown


#: a session's settings (superuser, at connection start) that log the plan of every statement it runs
AUTO_EXPLAIN = ("session_preload_libraries=auto_explain", "auto_explain.log_min_duration=0",
                "auto_explain.log_analyze=on", "auto_explain.log_buffers=on", "auto_explain.log_timing=off")


def explain_verify(log_path: str, bench) -> list:
    """The plans of every statement of an accepted verify and of one on an unknown account, as the
    server runs them (auto_explain, in this session only): [(what, [(statement, plan lines)])]."""
    account = "explained@corp.example"  # a fresh account: every code attempted before is spent
    codes = derivation.derive(os.urandom(32), account, 0, "base32-16", CODES)
    bench.verifier.import_record(make_record(codes, account=account, params=PARAMS))
    url = bench.url + "".join(f"%20-c{setting.replace('=', '%3D')}" for setting in AUTO_EXPLAIN)
    store = open_store(url)
    verifier = Verifier(store, pepper=bench.verifier._peppers.values())
    shown = []
    for what, call in (("verify, accepted", lambda: verifier.verify(account, codes.codes[0])),
                       ("verify, unknown account", lambda: verifier.verify("explained-unknown", codes.codes[1]))):
        with open(log_path) as handle:
            handle.seek(0, os.SEEK_END)
            mark = handle.tell()
        call()
        with open(log_path) as handle:
            handle.seek(mark)
            logged = handle.read().splitlines()
        statements = []
        for line in logged:
            if line.startswith("\tQuery Text: "):
                statements.append((line[len("\tQuery Text: "):], []))
            elif line.startswith("\t") and statements:
                statements[-1][1].append(line[1:])
        shown.append((what, statements))
    store.close()
    return shown


def raw_default_argon2id(rounds: int = 10) -> float:
    params = HashParams.argon2id()
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        code_digest(params, os.urandom(16), "base32-16", "0" * 15 + str(i % 10))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def v2_lines(count: int, first: int):
    """Record v2 lines with real commitments (fresh Ed25519 keys) and random digests."""
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    rng = random.Random(first)
    for i in range(first, first + count):
        data = json.loads(random_record_line(f"v2user{i:07d}@corp.example", count=CODES, rng=rng))
        key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        data.update(version=2, commitment=key.hex())
        yield json.dumps(data, separators=(", ", ": "))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts at the largest size")
    parser.add_argument("--attempts", type=int, default=1000, help="accepted verifies timed per size")
    parser.add_argument("--v2-sample", type=int, default=5000, help="record v2 imported for their own rate")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    per_size = max(1, args.attempts // CODES)
    sizes = [max(args.accounts // 1000, per_size), max(args.accounts // 10, per_size + 1), args.accounts]
    args.v2_sample = max(0, min(args.v2_sample, (sizes[-1] - per_size) // 2))
    work = tempfile.mkdtemp(prefix="sealcodes-scale-")
    postgres = PostgresServer(CLUSTER).start()
    print(f"PostgreSQL {os.path.basename(os.path.dirname(postgres.bin))} ({', '.join(f'{k}={v}' for k, v in CLUSTER.items())}); "
          f"{os.cpu_count()} CPUs; {CODES} codes per account; batches of {args.batch_size}; a server pepper")
    try:
        benches, imports, sizes_seen = [], [], []
        for n, size in enumerate(sizes):
            bench = Bench(postgres.fresh_url(), os.path.join(work, f"size{n}"), args.batch_size,
                          real_accounts(per_size))
            v2_count = args.v2_sample if n == len(sizes) - 1 else 0
            count, seconds, progress = bench.import_file(bench.filler(size - per_size - v2_count))
            imports.append((size, count, seconds, progress))
            if v2_count:
                v2 = bench.import_file(v2_lines(v2_count, count))
            benches.append(bench)
            print(f"  {size} accounts imported", flush=True)
        benches[0].settle()  # the whole database: every size alike
        sizes_seen = [(size, bench.size()) for size, bench in zip(sizes, benches)]
        load = [os.getloadavg()[0]]
        verifies = time_verifies(benches)
        admin = time_admin(benches)
        starts = time_start(benches)
        load.append(os.getloadavg()[0])
        plans = explain(benches[-1].url, benches[-1].pepper, benches[-1].attempted[0][0])
        plans += explain_verify(os.path.join(postgres.base, "log"), benches[-1])
        raw = raw_default_argon2id()
        for bench in benches:
            bench.verifier.store.close()
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    verifies = [(size, *times) for size, times in zip(sizes, verifies)]
    admin = [(size, status, audit, start) for size, (status, audit), start in zip(sizes, admin, starts)]

    print("\n1. import rate: sealcodes verifier import --bulk FILE (JSON lines, records of 10 codes)")
    for size, count, seconds, progress in imports:
        print(f"  {size:>9} accounts  {count:>9} records in {seconds:7.1f} s   {count / seconds:8.0f} records/s"
              f"   {count * CODES / seconds:9.0f} codes/s")
    if args.v2_sample:
        count, seconds, _ = v2
        v1_rate = imports[-1][1] / imports[-1][2]
        print(f"  record v2 sample {count:>9} records in {seconds:7.1f} s   {count / seconds:8.0f} records/s"
              f"   ({count / seconds / v1_rate:.2f}x of v1: each commitment is checked as a prime-order point)")
    print(f"  last progress line: {imports[-1][3]}")

    print("\n2. database size (tables, indexes, TOAST), per account")
    for accounts, tables in sizes_seen:
        total = sum(tables.values())
        parts = ", ".join(f"{name} {tables.get(name, 0) / accounts:.0f}" for name in TABLES)
        print(f"  {accounts:>9} accounts   {total / 2**20:8.1f} MiB   {total / accounts:6.0f} bytes/account ({parts})")

    print(f"\n3. verify (in process, PostgreSQL; sets at m=64 KiB, so this is the database's share; the sizes"
          f" take turns; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)")
    print("                       accepted p50     p99    |  unknown account p50     p99")
    for accounts, accepted, unknown in verifies:
        print(f"  {accounts:>9} accounts   {statistics.median(accepted) * 1000:7.2f} ms {percentile(accepted, .99) * 1000:7.2f} ms"
              f" |  {statistics.median(unknown) * 1000:7.2f} ms {percentile(unknown, .99) * 1000:7.2f} ms"
              f"   ({len(accepted)} + {len(unknown)} attempts)")
    first, last = verifies[0], verifies[-1]
    print(f"  {last[0]} / {first[0]} accounts: accepted p50 {statistics.median(last[1]) / statistics.median(first[1]):.2f}x, "
          f"p99 {percentile(last[1], .99) / percentile(first[1], .99):.2f}x; unknown p50 "
          f"{statistics.median(last[2]) / statistics.median(first[2]):.2f}x (goal: <= 1.1x)")
    print(f"  baseline: raw Argon2id at the default cost (m=19456 KiB, t=2) {raw * 1000:.1f} ms, what a "
          "default-cost set adds to every verify")

    print("\n4. status, audit and a process's start-up checks (schema, peppers of active sets; median, in process)")
    for accounts, status, audit, start in admin:
        print(f"  {accounts:>9} accounts   status {status * 1000:6.2f} ms   audit ACCOUNT {audit * 1000:6.2f} ms   "
              f"start-up {start * 1000:6.2f} ms")
    print(f"\n  EXPLAIN (ANALYZE) at {admin[-1][0]} accounts, every statement they run (verify: as auto_explain logs it):")
    for what, statements in plans:
        print(f"  -- {what}")
        for statement, plan in statements:
            print(f"     {statement}")
            for line in plan:
                print(f"       {line}")


if __name__ == "__main__":
    main()
