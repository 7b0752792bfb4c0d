"""Helpers of the fleet tests (several server processes, faults under load): accounts with many
codes, a load of client threads that records every answer, and what the database says is used."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import httpx

from _vsupport import code_set, record_for
from sealcodes.verifier import Verifier, open_store


def accounts_with_codes(verifier: Verifier, prefix: str, accounts: int, count: int, **record_options):
    """`accounts` accounts of one set of `count` codes each; returns {account: [codes in order]}."""
    found = {}
    for n in range(accounts):
        account = f"{prefix}-{n}"
        codes = code_set(label=f"fleet/{account}", count=count, response=os.urandom(32))
        verifier.import_record(record_for(codes, account=account, **record_options))
        found[account] = list(codes.codes)
    return found


@dataclass(frozen=True)
class Answer:
    at: float
    account: str
    code_index: int
    base: str
    #: the HTTP status, or None when the request got no answer (connection refused or cut)
    status: int | None
    body: dict | None

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.body is not None and self.body.get("result") == "accepted"


class Load:
    """One thread per account, each spending its account's codes in order through the servers
    `bases()` returns (it may change while the load runs), one request every `pace` seconds,
    until `stop()` or its codes run out; `answers` records every attempt."""

    def __init__(self, codes: dict, key: str, bases, pace: float = 0.05, timeout: float = 30.0,
                 new_connection_each: bool = False):
        self.codes, self.key, self.bases, self.pace = codes, key, bases, pace
        self.timeout, self.new_connection_each = timeout, new_connection_each
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(account, n), daemon=True)
                         for n, account in enumerate(codes)]
        self.started = time.monotonic()

    def start(self) -> "Load":
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.answers

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= moment]

    def _client(self, account: str, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        clients: dict[str, httpx.Client] = {}
        try:
            for index, code in enumerate(self.codes[account]):
                if self._stop.is_set():
                    return
                bases = self.bases()
                base = bases[(n + index) % len(bases)]
                client = clients.get(base)
                if client is None or self.new_connection_each:
                    if client is not None:
                        client.close()
                    client = clients[base] = httpx.Client(base_url=base, headers=headers, timeout=self.timeout)
                try:
                    reply = client.post("/v1/verify", json={"account": account, "code": code})
                    answer = Answer(time.monotonic(), account, index, base, reply.status_code, reply.json())
                except (httpx.TransportError, ValueError):
                    answer = Answer(time.monotonic(), account, index, base, None, None)
                    client.close()
                    clients.pop(base, None)
                with self._lock:
                    self.answers.append(answer)
                self._stop.wait(self.pace)
        finally:
            for client in clients.values():
                client.close()


def used_codes(url: str) -> set[tuple[str, int]]:
    """(account, code index) of every code the database marks used."""
    store = open_store(url)
    try:
        rows = store._fetch("SELECT s.account, c.idx FROM codes c JOIN code_sets s ON s.id = c.set_id "
                            "WHERE c.used_at IS NOT NULL")
    finally:
        store.close()
    return {(account, idx) for account, idx in rows}


def check_exactly_once(answers: list[Answer], used: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """No code accepted twice; every accepted code is used; every used code was accepted, except
    those whose request got no answer (the server died, or the database went, between the commit
    and the answer). Returns those: spent, but unanswered."""
    accepted = [(a.account, a.code_index) for a in answers if a.accepted]
    assert len(accepted) == len(set(accepted)), "a code was accepted twice"
    assert set(accepted) <= used, "an accepted code is not marked used"
    unanswered = {(a.account, a.code_index) for a in answers if a.status is None or a.status == 503}
    lost = used - set(accepted)
    assert lost <= unanswered, f"codes used without an accepted answer: {sorted(lost - unanswered)[:5]}"
    attempted = {(a.account, a.code_index) for a in answers}
    assert used <= attempted, "a code nobody sent is marked used"
    return lost


def check_unanswered_are_audited(url: str, lost: set[tuple[str, int]]) -> None:
    """A code spent by a request that got no answer (or a 503) was committed: the audit trail
    has its `success`, so an operator can tell the user their code is gone."""
    store = open_store(url)
    try:
        verifier = Verifier(store)
        audit = [e for account in sorted({account for account, _ in lost})
                 for e in verifier.audit(account, limit=1000)]
    finally:
        store.close()
    successes = {(e.account, e.code_index) for e in audit if e.event == "success"}
    assert lost <= successes, f"spent without an audited success: {sorted(lost - successes)[:5]}"


def children(pid: int) -> list[int]:
    """The processes `pid` started (a supervisor's workers and helpers)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(p) for p in handle.read().split()]
        except OSError:
            continue
    return found


def workers_of(pid: int) -> list[int]:
    """The worker processes of a supervising `verifier serve` (not multiprocessing's helpers)."""
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if any(b"spawn_main" in part for part in argv):
            found.append(child)
    return found


def wait_for(condition, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def terminate(process, timeout: float = 40.0) -> int:
    """SIGTERM, then the exit status (a negative number: killed by that signal)."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def scrape(url: str, key: str | None = None) -> dict:
    """GET a /metrics page with curl, as a Prometheus scraper would; {(sample, ((label, value), ...)):
    value}. Fails the test unless curl gets 200."""
    import shutil
    import subprocess

    from prometheus_client.parser import text_string_to_metric_families

    curl = shutil.which("curl")
    assert curl, "curl is needed (scripts/setup.sh --test installs it)"
    argv = [curl, "-sS", "--max-time", "20", "-w", "\n%{http_code} %{content_type}", url]
    if key:
        argv += ["-H", f"Authorization: Bearer {key}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    body, _, status = done.stdout.rpartition("\n")
    assert status.startswith("200 text/plain"), (status, body[:300])
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def figure(figures: dict, name: str, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)
