"""One pool of hash slots for every server process (host/sealcodes/verifier/slotpool.py).

Real processes on a real System V semaphore: a slot held by one process is missing in every other;
a process killed while it holds slots gives them back; a slot that frees goes to the process that
has waited longest, never to one that asks later; signals do not cut a wait short; a removed pool
turns waits into "busy". Then the server: `serve --workers 2 --hash-slots 1` keeps answering after
its workers are killed mid-hash, and leaves no semaphore behind, whether it stops or its
supervisor is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from _fleet import figure, scrape, wait_for, workers_of
from _support import console_script
from _vsupport import VerifierServer, alice_database, cheap_policy, code_set, free_port, record_for
from sealcodes.verifier import Busy, Verifier, open_store
from sealcodes.verifier.core import HashSlots
from sealcodes.verifier.record import HashParams
from sealcodes.verifier.slotpool import SharedSlots, SlotPoolError


@pytest.fixture
def pool():
    made = SharedSlots.create(2)
    yield made
    made.remove()


def _process(pool: SharedSlots, script: str) -> subprocess.Popen:
    """Another process that attaches to `pool` as `pool` and runs `script` (it prints what it did,
    line by line, and reads its orders from stdin)."""
    preamble = ("import sys, time\nfrom sealcodes.verifier.slotpool import SharedSlots\n"
                f"pool = SharedSlots({pool.ident}, {pool.size})\n"
                "def say(text):\n    print(text, flush=True)\n")
    return subprocess.Popen([sys.executable, "-c", preamble + script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _line(process: subprocess.Popen) -> str:
    return process.stdout.readline().strip()


def test_slots_held_by_one_process_are_missing_in_all_and_a_killed_holder_gives_them_back(pool):
    holder = _process(pool, "pool.acquire(timeout=5); pool.acquire(timeout=5); say('holding'); time.sleep(60)")
    try:
        assert _line(holder) == "holding"
        assert pool.free() == 0
        assert pool.acquire(timeout=0.2) is False
        holder.kill()  # SIGKILL: no `release` runs; the kernel undoes what the process held
        holder.wait()
        assert pool.acquire(timeout=5) and pool.acquire(timeout=5)
        assert pool.free() == 0
    finally:
        holder.kill()
        holder.wait()
    pool.release()
    pool.release()
    assert pool.free() == 2


def test_a_freed_slot_goes_to_the_longest_waiter_never_to_a_later_one(pool):
    assert pool.acquire(timeout=1) and pool.acquire(timeout=1)  # this process holds both
    waiter = "say('waiting'); got = pool.acquire(timeout=30); say(f'got {got}'); sys.stdin.readline()"
    first = _process(pool, waiter)
    try:
        assert _line(first) == "waiting"
        assert wait_for(lambda: pool.waiting() == 1, timeout=10)
        second = _process(pool, waiter)
        try:
            assert _line(second) == "waiting"
            assert wait_for(lambda: pool.waiting() == 2, timeout=10)
            pool.release()
            # handed over inside release: this process, asking again at once, finds none free
            assert pool.acquire(blocking=False) is False
            assert _line(first) == "got True"
            assert pool.waiting() == 1  # the second still waits
            pool.release()
            assert _line(second) == "got True"
        finally:
            for process in (first, second):
                process.kill()
                process.wait()
    finally:
        first.kill()
    assert wait_for(lambda: pool.free() == 2, timeout=5)  # the killed waiters' slots came back


def test_signals_do_not_cut_a_wait_short(pool):
    assert pool.acquire(timeout=1) and pool.acquire(timeout=1)
    waiter = _process(pool, "import signal\nsignal.signal(signal.SIGHUP, lambda *a: None)\nsay('waiting')\n"
                            "start = time.monotonic(); got = pool.acquire(timeout=1.5)\n"
                            "say(f'{got} {time.monotonic() - start:.2f}')")
    try:
        assert _line(waiter) == "waiting"
        wait_for(lambda: pool.waiting() == 1, timeout=10)
        for _ in range(5):
            waiter.send_signal(signal.SIGHUP)
            time.sleep(0.1)
        got, waited = _line(waiter).split()
    finally:
        waiter.kill()
        waiter.wait()
    assert got == "False" and float(waited) >= 1.45  # it waited its whole time, then had no slot
    pool.release()
    pool.release()


def test_a_removed_pool_answers_busy_and_forgives_a_late_release():
    pool = SharedSlots.create(1)
    slots = HashSlots(1, shared=pool)
    assert slots.size == 1 and slots.shared
    outcome = []

    def attempt():
        try:
            with slots.held(30):
                outcome.append("hashed")
        except Busy as exc:
            outcome.append(str(exc))

    with slots.held(1):  # the only slot, then a second attempt waits for it
        worker = threading.Thread(target=attempt)
        worker.start()
        assert wait_for(lambda: pool.waiting() == 1, timeout=10)
        pool.remove()  # the supervisor stops
        worker.join(timeout=10)
    # the release of the slot held above found the pool gone: not an error
    assert outcome == ["the verifier is stopping; retry shortly"]
    assert (slots.waiting, slots.running) == (0, 0)
    pool.remove()  # twice: a supervisor and an orphaned worker may both remove it
    with pytest.raises(SlotPoolError):
        pool.free()


def test_the_pool_is_private_to_its_user(pool):
    with open("/proc/sysvipc/sem") as table:
        rows = [line.split() for line in table.read().splitlines()[1:]]
    [row] = [row for row in rows if row[1] == str(pool.ident)]
    key, _, perms, count, uid = row[:5]
    assert (key, perms, count, uid) == ("0", "600", "1", str(os.getuid()))  # IPC_PRIVATE, owner only


def test_sizes_out_of_range_are_refused():
    for size in (0, -1, 32768):
        with pytest.raises(ValueError):
            SharedSlots.create(size)


# --- the server ----------------------------------------------------------------------------------

#: an attempt of about half a second here, so that one is surely hashing when the workers die
LONG = HashParams.argon2id(65536, 6, 1)


def _exists(ident: int) -> bool:
    try:
        SharedSlots(ident, 1).free()
        return True
    except SlotPoolError:
        return False


def _served(tmp_path, codes_per_account=4):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(memory_kib=LONG.memory_kib, iterations=LONG.iterations,
                                                       lanes=LONG.lanes, delay_base_s=0, max_failures=100,
                                                       attempt_wait_s=30))
    codes = code_set(count=codes_per_account)
    verifier.import_record(record_for(codes, params=LONG))
    _, key = verifier.create_api_key("hosts", "verify")
    _, scraper = verifier.create_api_key("scraper", "metrics")
    store.close()
    server = VerifierServer(url, workers=2, args=("--hash-slots", "1")).start()
    # both workers answering: one that dies still starting would stop the server (it could not start)
    assert wait_for(lambda: figure(scrape(server.base + "/metrics", scraper), "sealcodes_verifier_processes") == 2,
                    timeout=30), "the second worker never answered"
    return server, {"Authorization": f"Bearer {key}"}, codes


def _pool_of(server: VerifierServer) -> SharedSlots:
    """The pool the server named in its first line."""
    head, found = b"", None
    while found is None:
        more = server.process.stderr.read1(4096)
        assert more, head
        head += more
        found = re.search(rb"hash slots: (\d+), System V semaphore (\d+)", head)
    return SharedSlots(int(found[2]), int(found[1]))


def test_workers_killed_while_hashing_give_the_only_slot_back_and_the_pool_goes_with_the_server(tmp_path):
    server, headers, codes = _served(tmp_path)
    pool = _pool_of(server)
    try:
        assert pool.free() == 1
        def cut_short():  # its worker dies under it
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(server.base + "/v1/verify", json={"account": "alice", "code": codes.codes[0]},
                           headers=headers, timeout=30)

        attempt = threading.Thread(target=cut_short)
        attempt.start()
        assert wait_for(lambda: pool.free() == 0, timeout=10, step=0.01), "the attempt never took the slot"
        for worker in workers_of(server.process.pid):  # one of them is hashing
            os.kill(worker, signal.SIGKILL)
        attempt.join(timeout=30)
        assert pool.free() == 1  # the kernel gave the slot back
        # the supervisor starts new workers; they hash with the slot the dead one held
        accepted = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(httpx.post(
            server.base + "/v1/verify", json={"account": "alice", "code": codes.codes[1]}, headers=headers,
            timeout=30)), timeout=30, step=0.2)
        assert accepted and accepted.json()["result"] == "accepted"
    finally:
        log = server.stop()
    assert not _exists(pool.ident), "the stopped server left its semaphore"
    assert "Traceback" not in log


def test_workers_left_by_a_killed_supervisor_remove_the_pool(tmp_path):
    server, _, _ = _served(tmp_path)
    pool = _pool_of(server)
    workers = workers_of(server.process.pid)
    try:
        server.process.kill()  # the supervisor: its `finally` never runs
        server.process.wait()
        assert wait_for(lambda: not _exists(pool.ident), timeout=30, step=0.2), "the pool outlived every process"
    finally:
        for worker in workers:
            with contextlib.suppress(OSError):
                os.kill(worker, signal.SIGKILL)
        server.process = None


def test_without_system_v_semaphores_each_process_keeps_slots_of_its_own(tmp_path):
    """A kernel that refuses the semaphore (here: an IPC namespace allowing no semaphore set,
    kernel.sem's SEMMNI = 0): `serve` says so in one line and serves with slots per process."""
    url, key, codes = alice_database(tmp_path, count=2)
    port = free_port()
    serve = [console_script("sealcodes"), "verifier", "--db", url, "serve", "--listen", f"127.0.0.1:{port}",
             "--workers", "2", "--hash-slots", "2"]
    process = subprocess.Popen(["unshare", "--user", "--map-root-user", "--ipc", "sh", "-c",
                                'echo "250 32000 32 0" > /proc/sys/kernel/sem && exec "$@"', "sh", *serve],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        answer = wait_for(lambda: _answer(base, key, codes.codes[0]), timeout=30, step=0.2)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=40)
    log = err.decode(errors="replace")
    assert answer == "accepted", log
    assert ("Warning: no shared pool of hash slots (cannot create the shared hash slots: No space left on "
            "device): each process hashes at most 2 attempts at once") in log
    assert "(2 processes; hash slots: 2 per process)" in log
    assert process.returncode == 0 and "Traceback" not in log


def _answer(base, key, code):
    try:
        return httpx.post(base + "/v1/verify", json={"account": "alice", "code": code},
                          headers={"Authorization": f"Bearer {key}"}, timeout=10).json()["result"]
    except httpx.HTTPError:
        return None
