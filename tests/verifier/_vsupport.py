"""Helpers of the verifier tests: a real PostgreSQL server (initdb in a temporary directory,
pg_ctl on a Unix socket there, no TCP), a real PgBouncer in front of it, code sets and cheap
records."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import urllib.parse

from sealcodes import derivation
from sealcodes.verifier import Policy
from sealcodes.verifier.record import HashParams, make_record

#: cheap Argon2id for tests that do not test the default cost
TEST_PARAMS = HashParams.argon2id(64, 1, 1)
RESPONSE = bytes(range(32))
#: `verifier init` options of a test database that takes records made by the host (the default
#: Argon2id shape): no rate limit and no cap on attempts in flight (tests that test them set their own)
UNLIMITED_INIT = ("--key-rate", "0", "--address-rate", "0", "--in-flight", "0/0")
#: the same, with TEST_PARAMS as the Argon2id shape
CHEAP_INIT = ("--argon2", "64/1/1", *UNLIMITED_INIT)


def cheap_policy(**changes) -> Policy:
    """The policy of a test database: as `CHEAP_INIT`, with `changes` on top."""
    return Policy(**{"memory_kib": 64, "iterations": 1, "lanes": 1, "key_rate": 0, "address_rate": 0,
                     "key_in_flight": 0, "address_in_flight": 0, **changes})


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


#: settings of a test cluster: speed over durability (tests never cut the power)
TEST_CLUSTER_SETTINGS = {"fsync": "off", "max_connections": "300", "shared_buffers": "32MB"}


class PostgresServer:
    """A throwaway PostgreSQL cluster listening only on a Unix socket in its own directory."""

    def __init__(self, settings: dict | None = None):
        """`settings` (postgresql.conf names) go on top of TEST_CLUSTER_SETTINGS."""
        self.settings = {**TEST_CLUSTER_SETTINGS, **(settings or {})}
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh --test installs it)")
        self.base = tempfile.mkdtemp(prefix="sealcodes-pg-")
        self.data = os.path.join(self.base, "data")
        self.run_as = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.run_as = "postgres"
            user = pwd.getpwnam(self.run_as)
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._schemas = itertools.count()

    def _run(self, *argv, **kwargs):
        command = list(argv)
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, **kwargs)

    def start(self):
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale", "C")
        self.resume()
        return self

    def resume(self):
        """Start the server of the cluster (again, after `pause`)."""
        options = f"-k {self.base} -c listen_addresses=''" + "".join(
            f" -c {name}={value}" for name, value in self.settings.items())
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-o", options, "-l",
                  os.path.join(self.base, "log"), "-w", "-t", "60", "start")

    def pause(self):
        """Stop the server as an administrator's restart does (fast: clients are disconnected),
        keeping the cluster."""
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def stop(self):
        try:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, schema: str | None = None) -> str:
        query = {"host": self.base}
        if schema:
            query["options"] = f"-csearch_path={schema}"
        return "postgresql://postgres@/postgres?" + urllib.parse.urlencode(query)

    def fresh_url(self) -> str:
        """A URL whose tables live in a new, empty schema."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._schemas)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {name}")
        return self.url(name)


class PgBouncer:
    """PgBouncer (Debian's, 1.18) in transaction-pooling mode in front of a PostgresServer: its
    config in a temporary directory, listening on 127.0.0.1 and a free port (no Unix socket),
    clients authenticated by SCRAM-SHA-256 as a role of the cluster that has a password and no
    superuser right. Every database of the cluster is reachable through it (`*`), each with at
    most `pool_size` server connections, however many clients."""

    USER = "verifier"

    def __init__(self, postgres: PostgresServer, pool_size: int = 2):
        import secrets
        import shutil as _shutil

        self.bin = _shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(self.bin):
            raise RuntimeError("PgBouncer is not installed (scripts/setup.sh --test installs it)")
        self.postgres, self.pool_size = postgres, pool_size
        self.password = secrets.token_hex(16)
        self.base = tempfile.mkdtemp(prefix="sealcodes-pgbouncer-")
        self.process = None
        self._databases = itertools.count()

    def start(self, timeout: float = 30.0) -> "PgBouncer":
        import time

        import psycopg
        from psycopg import sql

        with psycopg.connect(self.postgres.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(self.USER), sql.Literal(self.password)))
            secret = connection.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                                        (self.USER,)).fetchone()[0]
        self.port = free_port()
        with open(os.path.join(self.base, "userlist.txt"), "w") as handle:
            handle.write(f'"{self.USER}" "{secret}"\n')
        settings = {
            "listen_addr": "127.0.0.1", "listen_port": self.port, "unix_socket_dir": "",
            "auth_type": "scram-sha-256", "auth_file": os.path.join(self.base, "userlist.txt"),
            "pool_mode": "transaction", "default_pool_size": self.pool_size, "min_pool_size": 0,
            "reserve_pool_size": 0, "max_client_conn": 1000, "logfile": os.path.join(self.base, "pgbouncer.log"),
        }
        with open(os.path.join(self.base, "pgbouncer.ini"), "w") as handle:
            handle.write(f"[databases]\n* = host={self.postgres.base}\n\n[pgbouncer]\n")
            handle.writelines(f"{name} = {value}\n" for name, value in settings.items())
        command = [self.bin, os.path.join(self.base, "pgbouncer.ini")]
        if self.postgres.run_as:  # PgBouncer refuses to run as root
            user = pwd.getpwnam(self.postgres.run_as)
            for name in (self.base, *(os.path.join(self.base, f) for f in os.listdir(self.base))):
                os.chown(name, user.pw_uid, user.pw_gid)
            command = ["runuser", "-u", self.postgres.run_as, "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres", prepared_statements=True), connect_timeout=2) as connection:
                    connection.execute("SELECT 1")
                return self
            except psycopg.Error as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start ({exc}): {log[-2000:]}") from None
                time.sleep(0.1)

    def url(self, database: str, prepared_statements: bool = False) -> str:
        """A libpq URL of `database` through PgBouncer (with the verifier's own URL parameter that
        turns psycopg's prepared statements off, unless asked)."""
        query = "" if prepared_statements else "?prepared_statements=off"
        return f"postgresql://{self.USER}:{self.password}@127.0.0.1:{self.port}/{database}{query}"

    def fresh_url(self, prepared_statements: bool = False) -> str:
        """A new, empty database owned by the verifier's role, reached through PgBouncer."""
        import psycopg
        from psycopg import sql

        name = f"b{os.getpid()}_{next(self._databases)}"
        with psycopg.connect(self.postgres.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                              sql.Identifier(self.USER)))
        return self.url(name, prepared_statements)

    def log(self) -> str:
        try:
            with open(os.path.join(self.base, "pgbouncer.log"), errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process.stderr.close()
            self.process = None
        shutil.rmtree(self.base, ignore_errors=True)


def store_url(request, directory) -> str:
    """A fresh database of the kind a fixture is parametrized with: "sqlite" (a file in
    `directory`) or "postgresql" (a new schema on the session's server)."""
    if request.param == "sqlite":
        return "sqlite:///" + str(directory / "verifier.db")
    return request.getfixturevalue("postgres").fresh_url()


def code_set(label="github.com/alice", epoch=0, fmt="base32-16", count=10, response=RESPONSE):
    return derivation.derive(response, label, epoch, fmt, count)


def record_for(codes, account="alice", params=TEST_PARAMS):
    return make_record(codes, account=account, params=params)


def alice_database(tmp_path, count: int = 5, key_name: str = "login", params: HashParams = TEST_PARAMS,
                   **policy) -> tuple[str, str, object]:
    """A SQLite database with one account ("alice", `count` codes of `params`' shape, the policy's
    one shape) and a verify key: (url, key, codes). `policy`: changes to cheap_policy's."""
    from sealcodes.verifier import Verifier, open_store

    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(**{
        "memory_kib": params.memory_kib, "iterations": params.iterations, "lanes": params.lanes,
        "delay_base_s": 0, **policy}))
    codes = code_set(count=count)
    verifier.import_record(record_for(codes, params=params))
    _, key = verifier.create_api_key(key_name, "verify")
    store.close()
    return url, key, codes


#: ports free_port handed out in this process
_GIVEN_PORTS: set = set()


def free_port() -> int:
    """A free loopback port for a server the test starts. Not one the kernel picks for bind(0) or a
    client's connection (the ephemeral range): between this probe and the server's own bind, a
    connection to PostgreSQL or to another server could take such a port, and two calls could get
    the same one (a server and its --metrics-listen). Below that range, never the same one twice."""
    import socket

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            ephemeral = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    low = max(1024, ephemeral - 8192)
    start = os.getpid() % (ephemeral - low)  # test processes side by side start apart
    for offset in range(ephemeral - low):
        port = low + (start + offset) % (ephemeral - low)
        if port in _GIVEN_PORTS:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    raise RuntimeError(f"no free port in {low}..{ephemeral - 1}")


def free_privileged_port() -> int:
    """A free loopback port below 1024 (only root can listen there: what `verifier pam --url`
    takes plain http to)."""
    import socket

    for port in range(900, 1024):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 1024 (listening there needs root)")


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def random_record_line(account: str, label: str | None = None, count: int = 10, params: HashParams = TEST_PARAMS,
                       rng=None) -> str:
    """A well-formed record v1 whose salt, digests and fingerprint are random, as one JSON line:
    a verifier cannot tell it from a real one (it holds no code to find), and it costs no hash to
    make, so bulk imports of many accounts are cheap to build. Without `rng` the record is the
    same on every run (seeded by its account, label and count)."""
    import json
    import random

    rng = rng or random.Random(f"{account}/{label}/{count}")
    fingerprint = "".join(rng.choice(_CROCKFORD) for _ in range(8))
    return json.dumps({
        "type": "sealcodes-verifier-record", "version": 1, "account": account, "label": label or account,
        "epoch": 0, "format": "base32-16", "count": count, "fingerprint": fingerprint[:4] + "-" + fingerprint[4:],
        "hash": params.to_dict(), "salt": rng.randbytes(16).hex(),
        "digests": [rng.randbytes(32).hex() for _ in range(count)]}, separators=(", ", ": "))


class VerifierServer:
    """A real `sealcodes verifier serve` process on 127.0.0.1 and a free port."""

    def __init__(self, db_url: str, env: dict | None = None, args: tuple = (), ca: str | None = None,
                 workers: int | None = 1, port: int | None = None, cpus: set[int] | None = None):
        """`args` go to `serve`; with `ca` (the CA of its --certfile) the server speaks HTTPS; the
        port is a free one unless given. One process unless `workers` says otherwise (None:
        serve's default, one per CPU it may use). With `cpus`, the server runs on those CPUs only
        (its affinity, as `taskset` sets it)."""
        self.cpus = cpus
        self.port = free_port() if port is None else port
        self.db_url = db_url
        self.env = env or {}
        self.args = tuple(args) + (("--workers", str(workers)) if workers else ())
        self.ca = ca
        #: what httpx clients of this server pass as `verify`
        self.verify = ssl.create_default_context(cafile=ca) if ca else True
        self.base = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout: float = 30.0) -> "VerifierServer":
        import subprocess
        import sys
        import time

        import httpx

        from _support import console_script

        env = dict(os.environ, **self.env)
        self.process = subprocess.Popen(
            [console_script("sealcodes"), "verifier", "--db", self.db_url, "serve", "--listen",
             f"127.0.0.1:{self.port}", "--log-level", "warning", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("verifier serve exited: " + self.process.stderr.read().decode(errors="replace"))
            try:
                if httpx.get(self.base + "/v1/health", timeout=1, verify=self.verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("verifier serve did not answer in time")

    def stop(self) -> str:
        if self.process is None:
            return ""
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=15)
        except Exception:
            self.process.kill()
            _, err = self.process.communicate()
        self.process = None
        return err.decode(errors="replace")


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and every live descendant (user + system)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending += [int(p) for p in handle.read().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total
