"""The verifier survives faults (docs/security.md item 37), with real processes: a PostgreSQL
restart under load, one of two servers killed with SIGKILL, a worker killed, SIGTERM with requests
in flight, a full disk under SQLite. After each, every code is used at most once, every accepted
answer is backed by a used code, and every used code was accepted unless its answer was lost with
a dying server or database."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import httpx
import pytest

from _fleet import (Load, accounts_with_codes, check_exactly_once, check_unanswered_are_audited, figure, scrape,
                    used_codes, wait_for, workers_of)
from _vsupport import PostgresServer, VerifierServer, cheap_policy, code_set, record_for
from sealcodes.verifier import Verifier, open_store
from sealcodes.verifier.record import HashParams


def _prepare(url, **policy):
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(max_failures=100, delay_base_s=0, **policy))
    _, key = verifier.create_api_key("load", "verify")
    return store, verifier, key


@pytest.fixture
def own_postgres():
    """A cluster of this test's own: it is stopped and started during the test."""
    server = PostgresServer().start()
    yield server
    server.stop()


def _restarts_under_load(postgres, outages: list[float], pace: float = 0.1):
    """50 clients on a server of two workers; the database stops for each of `outages` seconds in
    turn: every answer meanwhile is 503 JSON, at once; once it is back the server answers again by
    itself within seconds; exactly once throughout; /metrics counted every 503."""
    url = postgres.fresh_url()
    store, verifier, key = _prepare(url)
    metrics_key = verifier.create_api_key("scraper", "metrics")[1]
    codes = accounts_with_codes(verifier, "pg", 50, 100)
    store.close()
    server = VerifierServer(url, workers=2).start()
    load = Load(codes, key, lambda: [server.base], pace=pace, timeout=30).start()
    rounds = []
    try:
        for outage in outages:
            time.sleep(1.5)
            postgres.pause()
            down = time.monotonic()
            time.sleep(outage)
            during = load.since(down + min(1.0, outage / 2))
            postgres.resume()
            back = time.monotonic()
            recovered = wait_for(lambda: [a for a in load.since(back) if a.accepted], timeout=15)
            time.sleep(2.0)
            rounds.append((during, back, recovered[0].at if recovered else None, load.since(time.monotonic() - 1.0)))
        figures = scrape(server.base + "/metrics", metrics_key)
    finally:
        answers = load.stop()
        log = server.stop()
    for outage, (during, back, recovered_at, tail) in zip(outages, rounds):
        assert outage < 2 or len(during) >= 50, "the clients were not answered while the database was down"
        assert all(a.status == 503 and a.body == {"error": "unavailable", "message":
                                                  "the verifier database is unavailable"} for a in during)
        assert recovered_at is not None and recovered_at - back < 10, "no accepted answer within 10 s"
        assert tail and all(a.accepted for a in tail), {(a.status, str(a.body)) for a in tail}
    unavailable = sum(1 for a in answers if a.status == 503)
    assert figure(figures, "sealcodes_verifier_database_errors_total") == unavailable
    assert figure(figures, "sealcodes_verifier_responses_total", route="verify", status="503") == unavailable
    # a request whose commit went through as the database stopped got a 503 or nothing: its code
    # is spent all the same, and the audit trail says so
    check_unanswered_are_audited(url, check_exactly_once(answers, used_codes(url)))
    assert "Traceback" not in log


def test_postgresql_restart_under_load(own_postgres):
    _restarts_under_load(own_postgres, [3.0])


@pytest.mark.slow
def test_postgresql_restarts_soak(own_postgres):
    """The long version: five restarts in a row, outages from a moment to 20 s."""
    _restarts_under_load(own_postgres, [0.2, 3.0, 10.0, 1.0, 20.0], pace=1.0)  # 100 codes last 100 s


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_one_of_two_servers_killed(db, request, tmp_path):
    """Two servers on one database, 20 clients spread over both; one dies by SIGKILL: the other
    keeps answering, and afterwards the accepted answers are exactly the used codes (but for a
    code whose answer died with the server: used once, never accepted)."""
    url = "sqlite:///" + str(tmp_path / "v.db") if db == "sqlite" else request.getfixturevalue("postgres").fresh_url()
    store, verifier, key = _prepare(url)
    codes = accounts_with_codes(verifier, "kill", 20, 60)
    store.close()
    first, second = VerifierServer(url).start(), VerifierServer(url).start()
    alive = [first.base, second.base]
    load = Load(codes, key, lambda: alive, pace=0.05).start()
    try:
        time.sleep(1.5)
        first.process.kill()
        first.process.wait()
        killed = time.monotonic()
        alive = [second.base]
        time.sleep(2.0)
    finally:
        answers = load.stop()
        first.process = None
        log = second.stop()
    after = [a for a in answers if a.at > killed]
    assert len([a for a in after if a.base == second.base]) >= 20
    assert all(a.accepted for a in after if a.base == second.base)  # the other server keeps answering
    assert all(a.status is None for a in after if a.base == first.base)
    assert any(a.accepted and a.base == first.base for a in answers)
    lost = check_exactly_once(answers, used_codes(url))
    # a request cut by the kill may have been committed: then its code is spent, and the audit says so
    check_unanswered_are_audited(url, lost)
    assert "Traceback" not in log


def test_a_killed_worker_is_replaced(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store, verifier, key = _prepare(url)
    codes = accounts_with_codes(verifier, "w", 10, 40)
    store.close()
    server = VerifierServer(url, workers=2).start()
    try:
        workers = wait_for(lambda: len(workers_of(server.process.pid)) == 2 and workers_of(server.process.pid), 10)
        load = Load(codes, key, lambda: [server.base], pace=0.05, new_connection_each=True).start()
        time.sleep(0.8)
        os.kill(workers[0], signal.SIGKILL)
        killed = time.monotonic()
        replaced = wait_for(lambda: len(workers_of(server.process.pid)) == 2
                            and workers[0] not in workers_of(server.process.pid), 15)
        time.sleep(0.5)
        answers = load.stop()
    finally:
        log = server.stop()
    assert replaced, "the supervisor did not start another worker"
    assert all(a.accepted for a in answers if a.at > killed + 0.2)
    check_unanswered_are_audited(url, check_exactly_once(answers, used_codes(url)))
    assert "ended (exit status signal 9)" in log


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_requests_in_flight_then_exits_0(workers, tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    # attempts of about 0.4 s each, queued behind a few hash slots: several are in flight at once
    slow = HashParams.argon2id(19456, 16, 1)
    store, verifier, key = _prepare(url, memory_kib=slow.memory_kib, iterations=slow.iterations)
    metrics_key = verifier.create_api_key("scraper", "metrics")[1]
    codes = accounts_with_codes(verifier, "term", 8, 1, params=slow)
    store.close()
    server = VerifierServer(url, workers=workers, args=("--log-level", "info")).start()
    answers = []

    def in_flight():
        """All eight attempts reached the server, and some are still hashing or queued (on a
        loaded machine the first may be answered before the last arrives)."""
        figures = scrape(server.base + "/metrics", metrics_key)
        waiting = figure(figures, "sealcodes_verifier_hash_queue_depth") + \
            figure(figures, "sealcodes_verifier_hashes_running")
        return waiting > 0 and waiting + figure(figures, "sealcodes_verifier_verifies_total", result="accepted") == 8

    def attempt(account):
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            answers.append(client.post("/v1/verify", json={"account": account, "code": codes[account][0]}).json())

    threads = [threading.Thread(target=attempt, args=(account,)) for account in codes]
    for thread in threads:
        thread.start()
    assert wait_for(in_flight, timeout=10, step=0.02), "the eight attempts never all reached the server while some were in flight"
    process = server.process
    process.send_signal(signal.SIGTERM)
    status = process.wait(60)
    for thread in threads:
        thread.join()
    server.process = None
    log = process.stderr.read().decode(errors="replace")
    assert status == 0, log
    assert [a["result"] for a in answers] == ["accepted"] * 8, log
    with pytest.raises(httpx.ConnectError):  # refused, not accepted and then dropped
        httpx.get(server.base + "/v1/health", timeout=2)
    assert "Waiting for connections to close" in log  # the stop waited for them
    assert "Traceback" not in log


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted for the test (root only: the CI runs as root)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small filesystem needs root")
    point = tmp_path / "disk"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(point)], check=True)
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def _fill(directory):
    """Write a file until the filesystem is full; returns its path."""
    path = directory / "filler"
    with open(path, "wb", buffering=0) as handle:
        for size in (65536, 512):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass
    return path


def test_full_disk_under_sqlite_answers_503_and_loses_nothing(small_disk):
    database = small_disk / "verifier.db"
    url = "sqlite:///" + str(database)
    store, verifier, key = _prepare(url)
    codes = accounts_with_codes(verifier, "disk", 2, 40)
    store.close()
    server = VerifierServer(url).start()
    headers = {"Authorization": f"Bearer {key}"}
    importer = Verifier(open_store(url)).create_api_key("importer", "import")[1]
    try:
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
            def verify(account, n):
                return client.post("/v1/verify", json={"account": account, "code": codes[account][n]})

            before = [verify("disk-0", n).json()["result"] for n in range(5)]
            filler = _fill(small_disk)
            # writes go on while the write-ahead log has room, then fail: 503, nothing half-written
            answers = []
            for n in range(5, 40):
                answer = verify("disk-0", n)
                answers.append((n, answer.status_code, answer.json()))
                if answer.status_code == 503:
                    break
            refused = [n for n, status, _ in answers if status == 503]
            big = record_for(code_set(label="fleet/big", count=100, response=os.urandom(32)), account="big")
            imported = httpx.post(server.base + "/v1/records", json=big.to_dict(),
                                  headers={"Authorization": f"Bearer {importer}"}, timeout=30)
            assert client.get("/v1/health").status_code == 200
            filler.unlink()
            after = verify("disk-0", refused[0]).json() if refused else None
            again = [verify("disk-0", n).json()["result"] for n in range(5)]
            second = verify("disk-1", 0).json()["result"]
    finally:
        log = server.stop()
    assert before == ["accepted"] * 5
    assert refused, f"no write failed on the full disk: {answers[-3:]}"
    assert answers[-1][2] == {"error": "unavailable", "message": "the verifier database is unavailable"}
    assert all(status == 200 and body["result"] == "accepted" for _, status, body in answers[:-1])
    assert imported.status_code in (201, 503)
    assert after["result"] == "accepted"  # the refused attempt spent nothing
    assert again == ["rejected"] * 5  # every code spent before the disk filled stays spent
    assert second == "accepted"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    used = used_codes(url)
    assert {idx for account, idx in used if account == "disk-0"} == set(range(5)) | {
        n for n, status, _ in answers if status == 200} | {refused[0]}
    assert log.count("verifier store failure") == 1, log
