"""Unauthenticated traffic cannot exhaust the server (docs/security.md item 35).

The review: each request with a well-formed fake key reached the SQLite store; the server's worker
threads come and go, each new one opened a connection that was never closed; descriptors grew until
the process ran out, then it logged a traceback per accept. Now SQLite connections come from a
bounded pool, and a repeated error is logged once (then once a minute, with a count)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import httpx
import pytest

from _vsupport import VerifierServer, cheap_policy
from sealcodes.verifier import Verifier, open_store

FAKE_KEY = {"Authorization": "Bearer sck_0123456789ab_" + "A" * 43}


def _descriptors(pid="self", path=None) -> int:
    """Open descriptors of a process (those on files starting with `path`, when given)."""
    found = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        found += path is None or target.startswith(path)
    return found


def test_sqlite_store_keeps_descriptors_bounded_across_threads(tmp_path):
    store = open_store("sqlite:///" + str(tmp_path / "v.db"))
    Verifier.initialise(store, cheap_policy())
    store.get_setting("schema_version")
    before = _descriptors()
    for _ in range(20):  # short-lived threads, as a server's pool retires and replaces them
        threads = [threading.Thread(target=store.api_key, args=("0123456789ab",)) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    grown = _descriptors() - before
    assert grown <= 3 * 8, f"{grown} more descriptors after 200 threads"  # at most the pool, 2-3 each
    store.close()
    assert _descriptors() <= before


def _burst(base, requests, clients=20):
    """`requests` unauthenticated verifies from `clients` concurrent clients; their status codes."""
    statuses = []
    lock = threading.Lock()

    def client(n):
        with httpx.Client(base_url=base, headers=FAKE_KEY, timeout=60) as http:
            for _ in range(n):
                status = http.post("/v1/verify", json={"account": "a", "code": "b"}).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_ten_thousand_unauthenticated_requests_keep_descriptors_flat(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    Verifier.initialise(store, cheap_policy())  # no rate limit: every request reaches the database
    store.close()
    pool = 4
    server = VerifierServer(url, args=("--pool-size", str(pool))).start()
    database = str(tmp_path / "v.db")
    try:
        pid = server.process.pid
        assert set(_burst(server.base, 400, clients=40)) == {401}
        warm = _descriptors(pid)
        # the server's idle worker threads retire after 10 s; new ones take their place
        time.sleep(11)
        statuses = _burst(server.base, 9600, clients=40)
        after, on_database = _descriptors(pid), _descriptors(pid, database)
    finally:
        log = server.stop()
    assert len(statuses) == 9600 and set(statuses) == {401}
    # at most the pool's connections (database file and write-ahead log each) and the shared memory
    assert on_database <= 2 * pool + 1, on_database
    assert after - warm <= 2 * pool, f"descriptors {warm} -> {after}"
    assert "Traceback" not in log and "Too many open files" not in log


@pytest.mark.skipif(not os.path.exists("/usr/bin/prlimit"), reason="prlimit (util-linux)")
def test_descriptor_exhaustion_is_logged_once_and_recovers(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy())
    _, key = verifier.create_api_key("check", "verify")
    store.close()
    server = VerifierServer(url)
    server.start()
    pid = server.process.pid
    limit = _descriptors(pid) + 10
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={limit}:{limit}"], check=True)
    held = []
    try:
        for _ in range(60):  # more connections than descriptors left: accept() fails with EMFILE
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(3.5)  # asyncio retries accept() every second
    finally:
        for connection in held:
            connection.close()
    time.sleep(1.5)
    answer = httpx.post(server.base + "/v1/verify", json={"account": "a", "code": "not a code"},
                        headers={"Authorization": f"Bearer {key}"}, timeout=30)
    server.process.kill()  # what it logged is written already; its graceful shutdown takes a while
    log = server.stop()
    assert answer.status_code == 200 and answer.json() == {"result": "mistyped"}  # it recovered
    assert log.count("out of system resource") == 1, log[-3000:]
