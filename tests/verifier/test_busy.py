"""One client cannot hold every login back (docs/verifier.md, "Busy"; docs/security.md item 35).

The review: one verify-key client sending within the default rate limits (10/s from one address)
kept every hash slot busy; a legitimate login then waited without bound, its attempt queued behind
the client's. Now an attempt waits for a hash slot at most the policy's `attempt_wait_s`, then is
answered 503 "busy" (JSON, Retry-After) without being counted; one client address and one API key
have at most `address_in_flight` / `key_in_flight` attempts in flight, the rest wait their turn
without holding a slot; a slot that frees goes to the attempt that has waited longest (slotpool.py),
so a flood's next attempt cannot take it from a login queued before it; and `serve` warns at start when a client's rate limit times the attempt's
time exceeds the hash slots. Real `verifier serve` over HTTP; the library on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from _vsupport import VerifierServer, alice_database, cheap_policy, code_set, record_for
from sealcodes.verifier import Busy, Verifier, open_store
from sealcodes.verifier.ratelimit import InFlight
from sealcodes.verifier.record import HashParams

#: an Argon2id shape that takes a noticeable time (0.05-0.15 s here), so attempts overlap
SLOW = HashParams.argon2id(32768, 2, 1)


def _a_quarter_attempt() -> float:
    """A quarter of what one SLOW hash takes on this machine now (the best of three): a wait for a
    slot that ends before the attempts holding the slots do, however fast the machine is."""
    from sealcodes.verifier.record import code_digest

    times = []
    for _ in range(3):
        start = time.perf_counter()
        code_digest(SLOW, bytes(16), "base32-16", "0" * 17)
        times.append(time.perf_counter() - start)
    return min(times) / 4


def test_an_attempt_waits_for_a_hash_slot_only_so_long(db_url):
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy(attempt_wait_s=0.2, delay_base_s=0), hash_slots=1)
    codes = code_set(count=2)
    verifier.import_record(record_for(codes))
    outcome = []
    with verifier.hash_slots.held(0):  # every slot taken (by a stuck attempt)
        def attempt():
            try:
                outcome.append(verifier.verify("alice", codes.codes[0]))
            except Busy as exc:
                outcome.append(exc)

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "the attempt is still waiting for a hash slot"
    [busy] = outcome
    assert isinstance(busy, Busy) and "busy" in str(busy)
    # not counted, not audited: the attempt was never made
    assert verifier.status("alice").failures == 0
    assert [a.event for a in verifier.audit("alice")] == ["import"]
    assert verifier.verify("alice", codes.codes[0]).accepted
    store.close()


def _server(tmp_path, **policy):
    """A served database with one account ("alice", three codes of the SLOW shape) and a verify key."""
    url, key, codes = alice_database(tmp_path, count=3, key_name="pam-hosts", params=SLOW, max_failures=100,
                                     **policy)
    # two slots whatever the machine's CPUs: the figures below follow from them
    return VerifierServer(url, args=("--hash-slots", "2")).start(), key, codes


async def _flood(server, key, codes, attackers: int):
    """`attackers` attempts at once from 127.0.0.1 (made-up accounts, well-formed codes), and while
    they run, alice's login from 127.0.0.2; returns the flood's answers and alice's."""
    headers = {"Authorization": f"Bearer {key}"}
    wrong = code_set(label="guess", count=1).codes[0]
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=60,
                                 limits=httpx.Limits(max_connections=attackers)) as attacker, \
            httpx.AsyncClient(base_url=server.base, headers=headers, timeout=60,
                              transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")) as login:
        flood = [asyncio.create_task(attacker.post("/v1/verify", json={"account": f"ghost{i}", "code": wrong}))
                 for i in range(attackers)]
        await asyncio.sleep(0.05)
        alice = await login.post("/v1/verify", json={"account": "alice", "code": codes.codes[0]})
        return await asyncio.gather(*flood), alice


def _flooded(tmp_path, attackers: int, wait_attempts: float = 0.25, **policy):
    """A server whose attempts wait for a slot `wait_attempts` times an attempt's time, flooded by
    `attackers` at once (_flood): the flood's answers, alice's, and the server's log."""
    server, key, codes = _server(tmp_path, attempt_wait_s=_a_quarter_attempt() * 4 * wait_attempts, **policy)
    try:
        flood, alice = asyncio.run(_flood(server, key, codes, attackers))
    finally:
        log = server.stop()
    return flood, alice, log


def test_one_address_gets_its_share_of_the_hash_slots_and_the_rest_is_busy(tmp_path):
    """The flood's address holds both slots (its cap is 2), and its other attempts wait their turn
    at the address's gate; alice's login queues for a slot before the flood's next attempt can, so
    the first slot that frees is hers: she waits at most one attempt, here given four."""
    flood, alice, log = _flooded(tmp_path, 30, wait_attempts=4, address_in_flight=2, key_in_flight=8)
    assert alice.status_code == 200 and alice.json()["result"] == "accepted"
    statuses = [answer.status_code for answer in flood]
    assert set(statuses) == {200, 503} and statuses.count(503) >= 10, statuses
    busy = next(answer for answer in flood if answer.status_code == 503)
    assert busy.json() == {"error": "busy", "message": "the verifier is busy: retry shortly"}
    assert busy.headers["Retry-After"] == "1"
    assert "Traceback" not in log


def test_every_slot_taken_answers_busy_after_the_wait(tmp_path):
    """No cap per client: the flood takes every hash slot, and attempts beyond them are answered
    busy once the wait is over, instead of waiting without bound."""
    flood, _, log = _flooded(tmp_path, 40, address_in_flight=0, key_in_flight=0)
    statuses = [answer.status_code for answer in flood]
    assert 503 in statuses and 200 in statuses, statuses
    # serve warned at start: with no cap in flight and no rate limit, one client can take every slot
    assert "Warning: no rate limit per client address and no cap on its attempts in flight" in log


def test_serve_warns_when_a_clients_rate_exceeds_the_hash_slots(tmp_path):
    server, _, _ = _server(tmp_path, address_rate=1000, address_burst=2000, key_rate=0.5, key_burst=1,
                           address_in_flight=2, key_in_flight=2)
    log = server.stop()
    warnings = [line for line in log.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1, log
    assert "1000 attempts/s per client address (init --address-rate)" in warnings[0]
    assert "hash slots busy, and the server has 2:" in warnings[0]


def test_in_flight_waits_its_turn_and_forgets_idle_clients():
    async def scenario():
        gate = InFlight(2)
        order = []

        async def hold(name, key, seconds, deadline):
            try:
                async with gate.slot(key, time.monotonic() + deadline):
                    order.append(("in", name))
                    await asyncio.sleep(seconds)
            except TimeoutError:
                order.append(("busy", name))

        await asyncio.gather(hold("a", "k", 0.2, 1), hold("b", "k", 0.2, 1), hold("c", "k", 0.01, 1),
                             hold("d", "k", 0.01, 0.05), hold("e", "other", 0.01, 0.05))
        return order, len(gate)

    order, remembered = asyncio.run(scenario())
    assert order[:3] == [("in", "a"), ("in", "b"), ("in", "e")]  # another key does not wait for "k"
    assert ("busy", "d") in order and ("in", "c") in order  # c waited its turn; d's deadline came first
    assert remembered == 0
