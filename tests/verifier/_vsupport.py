"""Helpers of the verifier tests: a real PostgreSQL server (initdb in a temporary directory,
pg_ctl on a Unix socket there, no TCP), code sets and cheap records."""

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


class PostgresServer:
    """A throwaway PostgreSQL cluster listening only on a Unix socket in its own directory."""

    def __init__(self):
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
        options = f"-k {self.base} -c listen_addresses='' -c fsync=off -c max_connections=300 " \
                  "-c shared_buffers=32MB"
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-o", options, "-l",
                  os.path.join(self.base, "log"), "-w", "-t", "60", "start")
        return self

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


class VerifierServer:
    """A real `sealcodes verifier serve` process on 127.0.0.1 and a free port."""

    def __init__(self, db_url: str, env: dict | None = None, args: tuple = (), ca: str | None = None,
                 port: int | None = None):
        """`args` go to `serve`; with `ca` (the CA of its --certfile) the server speaks HTTPS; the
        port is a free one unless given."""
        import socket

        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.db_url = db_url
        self.env = env or {}
        self.args = tuple(args)
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
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
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
