"""The Verifier against both stores (SQLite file, real PostgreSQL): one shared suite."""

from __future__ import annotations

import multiprocessing
import threading
import types

import pytest

import sealcodes.verifier.core as core
from _vsupport import TEST_PARAMS, cheap_policy, code_set, record_for
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import (
    ACCEPTED,
    LOCKED,
    MISTYPED,
    REJECTED,
    THROTTLED,
    Policy,
    Principal,
    Verifier,
    VerifierConfigError,
    open_store,
)
from sealcodes.verifier.core import RetiredSet
from sealcodes.verifier.record import HashParams
from sealcodes.verifier.store import MIGRATIONS, SCHEMA_VERSION, StoreError

#: the CLI's `import --force`: an account's second label, or a rotation without a proof
FORCE = Principal.local(force=True)


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def events():
    return []


@pytest.fixture
def verifier(db_url, clock, events):
    store = open_store(db_url)
    v = Verifier.initialise(store, cheap_policy(max_failures=5, delay_base_s=0), clock=clock, events=events.append)
    yield v
    store.close()


class HashCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = core.code_digest

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(core, "code_digest", counted)


class CompareCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = core.hmac.compare_digest

        def counted(a, b):
            self.calls += 1
            return real(a, b)

        monkeypatch.setattr(core, "hmac", types.SimpleNamespace(compare_digest=counted))


def test_each_code_is_accepted_once(verifier):
    codes = code_set(count=3)
    assert verifier.import_record(record_for(codes)).imported
    for number, code in enumerate(codes.codes, start=1):
        result = verifier.verify("alice", code.lower().replace("-", " "))
        assert (result.outcome, result.code_number, result.remaining) == (ACCEPTED, number, 3 - number)
        assert verifier.verify("alice", code).outcome == REJECTED  # spent
    assert verifier.status("alice").remaining == 0


def test_one_hash_per_attempt_and_every_digest_compared(verifier, monkeypatch):
    codes = code_set(count=100)
    verifier.import_record(record_for(codes))
    hashes, compares = HashCounter(monkeypatch), CompareCounter(monkeypatch)
    assert verifier.verify("alice", codes.codes[0]).outcome == ACCEPTED  # a match on the first digest...
    assert (hashes.calls, compares.calls) == (1, 100)  # ...does not stop the comparison
    assert verifier.verify("alice", codes.codes[99]).outcome == ACCEPTED
    assert (hashes.calls, compares.calls) == (2, 200)
    small = code_set(label="small", count=10)
    verifier.import_record(record_for(small, account="bob"))
    assert verifier.verify("bob", small.codes[5]).outcome == ACCEPTED
    assert hashes.calls == 3


def test_mistyped_is_answered_without_hash_and_not_counted(verifier, monkeypatch):
    codes = code_set(count=2)
    verifier.import_record(record_for(codes))
    hashes = HashCounter(monkeypatch)
    wrong_check = codes.codes[0][:-1] + ("0" if codes.codes[0][-1] != "0" else "1")
    for typed in (wrong_check, "hello", codes.codes[0][:-2], "", "PDNV-H2W6-DE8S-0C1U"):
        assert verifier.verify("alice", typed).outcome == MISTYPED
    assert hashes.calls == 0
    assert verifier.status("alice").failures == 0


def test_unknown_account_costs_a_hash_and_is_rejected(verifier, monkeypatch, clock):
    verifier.import_record(record_for(code_set()))
    hashes = HashCounter(monkeypatch)
    result = verifier.verify("nobody", code_set().codes[0])
    assert result.outcome == REJECTED  # counted like any wrong guess
    assert hashes.calls == 1 and verifier.status("nobody").failures == 1
    assert verifier.verify("nobody", "not a code").outcome == MISTYPED


def test_rotation_supersedes_older_epochs(verifier, events):
    old, new = code_set(epoch=0), code_set(epoch=1)
    first = record_for(old)
    verifier.import_record(first)
    assert verifier.verify("alice", old.codes[0]).outcome == ACCEPTED
    result = verifier.import_record(record_for(new), FORCE)
    assert result.imported and result.superseded_epochs == (0,)
    assert verifier.verify("alice", old.codes[1]).outcome == REJECTED
    assert verifier.verify("alice", new.codes[1]).outcome == ACCEPTED
    with pytest.raises(InvalidInputError, match="already imported with other codes"):
        verifier.import_record(record_for(old))  # the superseded epoch, with a fresh salt
    with pytest.raises(RetiredSet, match="was superseded and is never imported again"):
        verifier.import_record(first, FORCE)
    with pytest.raises(InvalidInputError, match="already imported with other codes"):
        verifier.import_record(record_for(new), FORCE)  # same epoch, fresh salt: a different record
    assert [s.epoch for s in verifier.status("alice").sets] == [1]
    assert [e.kind for e in events if e.kind == "set-imported"] == ["set-imported", "set-imported"]


def test_same_record_twice_is_unchanged(verifier):
    record = record_for(code_set())
    assert verifier.import_record(record).imported
    assert not verifier.import_record(record).imported
    assert [a.event for a in verifier.audit("alice")] == ["import"]


def test_increasing_delay_then_lock_then_unlock(verifier, clock, events, monkeypatch):
    verifier = Verifier.initialise(verifier.store, cheap_policy(max_failures=5, delay_base_s=1, delay_max_s=60),
                                   clock=clock, events=events.append)
    codes = code_set(count=3)
    verifier.import_record(record_for(codes))
    wrong = code_set(label="other", count=12).codes
    delays = []
    for attempt in range(4):
        result = verifier.verify("alice", wrong[attempt])
        assert result.outcome == REJECTED
        delays.append(result.retry_after)
        hashes = HashCounter(monkeypatch)
        early = verifier.verify("alice", codes.codes[0])  # even the right code waits, unhashed, uncounted
        assert early.outcome == THROTTLED and hashes.calls == 0
        clock.now += result.retry_after
    assert delays == [1, 2, 4, 8]
    assert verifier.status("alice").failures == 4
    assert verifier.verify("alice", wrong[4]).outcome == LOCKED  # 5th consecutive failure
    clock.now += 3600
    assert verifier.verify("alice", codes.codes[0]).outcome == LOCKED  # locked: no code helps
    assert verifier.status("alice").locked
    assert events[-1].kind == "account-locked"
    assert verifier.unlock("alice")
    assert verifier.verify("alice", codes.codes[0]).outcome == ACCEPTED
    state = verifier.status("alice")
    assert not state.locked and state.failures == 0
    assert [a.event for a in verifier.audit("alice")][-4:] == ["failure", "lockout", "unlock", "success"]


def test_made_up_accounts_lock_alike_but_tell_no_one(verifier, events):
    """The review: an account nobody holds, named by whoever calls verify (`ceo@example.com; please
    reset your password at http://evil.example`), was locked like a real one and the operator's
    hook ("mail the user") ran with that text. It is still locked alike (the answers must not tell
    it from a real account), audited, and no event is emitted for it."""
    verifier.import_record(record_for(code_set(count=2)))
    made_up = "ceo@example.com; please reset your password at http://evil.example"
    wrong = code_set(label="guess", count=5).codes
    assert [verifier.verify(made_up, code).outcome for code in wrong] == [REJECTED] * 4 + [LOCKED]
    assert [verifier.verify("alice", code).outcome for code in wrong] == [REJECTED] * 4 + [LOCKED]
    assert [(e.kind, e.account) for e in events if e.kind == "account-locked"] == [("account-locked", "alice")]
    assert [a.event for a in verifier.audit(made_up)][-1] == "lockout"


def test_success_resets_the_counter(verifier, clock):
    codes = code_set(count=3)
    verifier.import_record(record_for(codes))
    for attempt in range(3):
        clock.now += verifier.verify("alice", code_set(label="x").codes[attempt]).retry_after
    assert verifier.status("alice").failures == 3
    assert verifier.verify("alice", codes.codes[0]).outcome == ACCEPTED
    assert verifier.status("alice").failures == 0


def test_policy_limits(db_url):
    store = open_store(db_url)
    with pytest.raises(InvalidInputError, match="1 to 100"):
        Verifier.initialise(store, Policy(max_failures=101))
    assert Verifier.initialise(store, Policy(max_failures=100)).policy.max_failures == 100
    assert Policy().max_failures == 10
    store.close()


def test_revoke_and_status(verifier):
    codes = code_set(count=4)
    verifier.import_record(record_for(codes))
    verifier.import_record(record_for(code_set(label="vpn", fmt="base32-24", count=2), params=HashParams.hmac_sha256()),
                           FORCE)
    for code in codes.codes[:2]:
        assert verifier.verify("alice", code).accepted
    state = verifier.status("alice")
    assert [(s.label, s.remaining) for s in state.sets] == [("github.com/alice", 2), ("vpn", 2)]
    assert state.remaining == 4 and not state.few_left
    assert verifier.revoke("alice", "vpn") == [("vpn", 0)]
    assert verifier.status("alice").few_left  # 2 left <= 3
    assert verifier.revoke("alice") == [("github.com/alice", 0)]
    assert verifier.verify("alice", codes.codes[3]).outcome == REJECTED
    assert "revoke" in [a.event for a in verifier.audit("alice")]


def test_two_formats_on_one_account(verifier):
    digits = code_set(label="bank", fmt="digits-24", count=2)
    wide = code_set(label="vpn", fmt="base32-24", count=2)
    verifier.import_record(record_for(digits))
    verifier.import_record(record_for(wide, params=HashParams.hmac_sha256()), FORCE)
    assert verifier.verify("alice", digits.codes[1]).label == "bank"
    assert verifier.verify("alice", wide.codes[0]).label == "vpn"


def test_events_and_audit_never_hold_a_code(verifier, events, db_url):
    codes = code_set(count=3)
    verifier.import_record(record_for(codes))
    verifier.verify("alice", codes.codes[1])
    verifier.verify("alice", code_set(label="x").codes[0])
    used = [e for e in events if e.kind == "code-used"][0]
    assert (used.account, used.label, used.code_number, used.remaining) == ("alice", "github.com/alice", 2, 2)
    audit = verifier.audit()
    assert [(a.event, a.code_index) for a in audit] == [("import", None), ("success", 1), ("failure", None)]
    dump = repr(audit) + repr([e.to_dict() for e in events]) + _dump(verifier.store)
    for code in codes.codes:
        assert code not in dump and code.replace("-", "") not in dump


def _dump(store) -> str:
    rows = []
    for table in ("code_sets", "codes", "accounts", "audit", "settings"):
        rows += store._fetch(f"SELECT * FROM {table}")
    return repr(rows)


def test_pepper(db_url):
    pepper = bytes(range(32))
    store = open_store(db_url)
    v = Verifier.initialise(store, cheap_policy(), pepper=pepper)
    codes = code_set(count=2)
    record = record_for(codes)
    v.import_record(record)
    stored = {bytes(r[0]) for r in store._fetch("SELECT digest FROM codes")}
    assert stored.isdisjoint(record.digests)  # a dump alone does not test guesses
    assert v.verify("alice", codes.codes[0]).accepted
    with pytest.raises(VerifierConfigError, match="none is configured"):
        Verifier(store)
    with pytest.raises(VerifierConfigError, match="do not include pepper"):
        Verifier(store, pepper=bytes(32))
    with pytest.raises(VerifierConfigError):
        Verifier.initialise(store, pepper=bytes(32))
    store.close()


def test_api_keys_stored_hashed(verifier):
    key_id, token = verifier.create_api_key("ci")
    assert verifier.check_api_key(token).key_id == key_id
    assert verifier.check_api_key(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verifier.check_api_key("sck_" + key_id) is None
    assert token not in _dump(verifier.store) + repr(verifier.store._fetch("SELECT * FROM api_keys"))
    assert verifier.revoke_api_key(key_id) and verifier.check_api_key(token) is None
    assert [k.revoked for k in verifier.api_keys()] == [True]


def test_hundred_concurrent_attempts_one_success_threads(verifier):
    codes = code_set(count=2)
    verifier.import_record(record_for(codes))
    barrier = threading.Barrier(100)
    outcomes = []

    def attempt():
        barrier.wait()
        outcomes.append(verifier.verify("alice", codes.codes[0]).outcome)

    threads = [threading.Thread(target=attempt) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(ACCEPTED) == 1 and len(outcomes) == 100
    assert set(outcomes) <= {ACCEPTED, REJECTED, LOCKED}
    assert verifier.status("alice").remaining == 1
    # a spent code counts like a wrong one (so it does not tell that the account exists): locked at 5
    assert verifier.status("alice").locked


def test_first_attempts_at_once_on_a_new_name_are_each_counted_once(db_url):
    """Attempts at a name with no row yet, all at once: the row is made once (the first locks it,
    the others wait, then find it), and every attempt is counted: none lost, none twice."""
    store = open_store(db_url)
    v = Verifier.initialise(store, cheap_policy(max_failures=100, delay_base_s=0))
    wrong = code_set(label="other", count=12).codes
    barrier = threading.Barrier(12)
    outcomes = []

    def attempt(n):
        barrier.wait()
        outcomes.append(v.verify(f"new-{n % 2}", wrong[n]).outcome)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [REJECTED] * 12
    assert [v.status(f"new-{n}").failures for n in (0, 1)] == [6, 6]
    assert store._fetch("SELECT COUNT(*) FROM accounts WHERE account IN (?, ?)", ("new-0", "new-1")) == [(2,)]
    store.close()


def _process_attempts(db_url, code, barrier, results, threads):
    store = open_store(db_url)
    v = Verifier(store)
    found = []

    def attempt():
        barrier.wait()
        found.append(v.verify("alice", code).outcome)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    results.put(found)


def test_hundred_concurrent_attempts_one_success_processes(db_url):
    store = open_store(db_url)
    v = Verifier.initialise(store, cheap_policy(max_failures=100, delay_base_s=0))
    codes = code_set(count=2)
    v.import_record(record_for(codes))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(100)
    results = context.Queue()
    processes = [context.Process(target=_process_attempts, args=(db_url, codes.codes[1], barrier, results, 10))
                 for _ in range(10)]
    for process in processes:
        process.start()
    outcomes = [o for _ in processes for o in results.get(timeout=120)]
    for process in processes:
        process.join(timeout=30)
    assert len(outcomes) == 100 and outcomes.count(ACCEPTED) == 1
    assert v.status("alice").remaining == 1
    store.close()


def test_schema_migrates_from_version_1(db_url):
    store = open_store(db_url)
    with store._connection() as connection:
        with store._write_transaction(connection) as cursor:
            for statement in MIGRATIONS[0]:
                cursor.execute(statement.format(**store.TYPES))
            cursor.execute(store.sql("INSERT INTO settings (name, value) VALUES (?, ?)"), ("schema_version", "1"))
    assert store.schema_version() == 1
    with pytest.raises(StoreError, match="migrate"):
        Verifier(store)
    v = Verifier.initialise(store)
    assert store.schema_version() == SCHEMA_VERSION == 4
    assert v.create_api_key("after-migration")
    assert store.migrate() == SCHEMA_VERSION  # idempotent
    store.close()


def test_newer_schema_and_uninitialised_database_refused(db_url):
    store = open_store(db_url)
    with pytest.raises(StoreError, match="not initialised"):
        Verifier(store)
    Verifier.initialise(store)
    store.set_settings({"schema_version": 99})
    with pytest.raises(StoreError, match="upgrade"):
        store.migrate()
    store.close()


def test_default_cost_record_verifies(db_url):
    store = open_store(db_url)
    v = Verifier.initialise(store)
    codes = code_set(count=2)
    record = record_for(codes, params=HashParams.argon2id())
    assert record.hash.memory_kib == 19456
    v.import_record(record)
    assert v.verify("alice", codes.codes[0]).accepted
    store.close()


def test_unreachable_postgres_is_a_store_error(tmp_path):
    store = open_store(f"postgresql://postgres@/postgres?host={tmp_path}&connect_timeout=1")
    with pytest.raises(StoreError):
        Verifier(store)
    store.close()
