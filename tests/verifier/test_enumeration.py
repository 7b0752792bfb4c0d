"""Whether an account exists is not told by an attempt's answer, `retry_after`, headers or work; and
the server bounds what a record may ask for (docs/verifier.md, "What an attempt costs").

The work is observed, not timed: every Argon2id computation goes through `record.hash_input`, and
the meter lists the parameters (m, t, p) of each call. The first review found: a code of a format
the account does not use answered `mistyped` (no hash) on existing accounts only; `hmac-sha256`
accounts answered in a tenth of the time; a spent code answered without `retry_after`; records
could ask for 1 GiB. The second: padding to equal memory x passes does not equalise time (at equal
memory x passes, Argon2id with m=38912 KiB, t=1 took 3x as long as m=19456 KiB, t=2, and lanes
added more), so a set's shape told a known account from an unknown one; and `hmac-sha256` sets
cost nothing, so an account could hold thousands. Now every Argon2id set has the policy's one
shape, every attempt makes the same calls, and an account holds at most `max_sets` sets."""

from __future__ import annotations

import os

import httpx
import pytest

import sealcodes.verifier.record as record_module
from _support import run_cli
from _vsupport import CHEAP_INIT, TEST_PARAMS, VerifierServer, cheap_policy, code_set, record_for
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import ACCEPTED, MISTYPED, REJECTED, Principal, Verifier, open_store
from sealcodes.verifier.record import HashParams, VerifierRecord

FORCE = Principal.local(force=True)
TEST_SHAPE = (TEST_PARAMS.memory_kib, TEST_PARAMS.iterations, TEST_PARAMS.lanes)


class ShapeMeter:
    """The Argon2id calls made (their m, t, p, in order), whatever they were for."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = record_module.hash_input

        def metered(params, salt, data):
            if params.scheme == "argon2id":
                self.calls.append((params.memory_kib, params.iterations, params.lanes))
            return real(params, salt, data)

        monkeypatch.setattr(record_module, "hash_input", metered)

    def take(self) -> tuple:
        calls, self.calls = tuple(self.calls), []
        return calls


class Clock:
    now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def verifier(db_url):
    store = open_store(db_url)
    yield Verifier.initialise(store, cheap_policy(delay_base_s=1, max_failures=50), clock=Clock())
    store.close()


def _populate(verifier, tag):
    """Accounts of every kind, one per attempt so each is its first failure; returns
    {kind: (account, typed code)}."""
    argon = code_set(label=f"{tag}-argon", count=3)
    fast = code_set(label=f"{tag}-fast", fmt="base32-24", count=3)
    digits = code_set(label=f"{tag}-digits", fmt="digits-24", count=3)
    for account in ("alice-1", "alice-2", "spent"):
        verifier.import_record(record_for(argon, account=f"{tag}-{account}"))
    for account in ("bob-1", "bob-2"):
        verifier.import_record(record_for(fast, account=f"{tag}-{account}", params=HashParams.hmac_sha256()))
    verifier.import_record(record_for(digits, account=f"{tag}-carol"))
    assert verifier.verify(f"{tag}-spent", argon.codes[0]).outcome == ACCEPTED
    foreign = code_set(label="foreign", count=1, fmt="base32-16").codes[0]
    foreign_wide = code_set(label="foreign", count=1, fmt="base32-24").codes[0]
    foreign_digits = code_set(label="foreign", count=1, fmt="digits-24").codes[0]
    return {
        "unknown account, base32-16 code": (f"{tag}-nobody-1", foreign),
        "unknown account, base32-24 code": (f"{tag}-nobody-2", foreign_wide),
        "unknown account, digits-24 code": (f"{tag}-nobody-3", foreign_digits),
        "argon2id account, wrong code": (f"{tag}-alice-1", foreign),
        "argon2id account, spent code": (f"{tag}-spent", argon.codes[0]),
        "argon2id account, code of another format": (f"{tag}-alice-2", foreign_wide),
        "hmac-sha256 account, wrong code": (f"{tag}-bob-1", foreign_wide),
        "hmac-sha256 account, code of another format": (f"{tag}-bob-2", foreign),
        "digits-24 account, wrong code": (f"{tag}-carol", foreign_digits),
    }


def test_every_refused_attempt_answers_and_works_the_same(verifier, monkeypatch):
    meter = ShapeMeter(monkeypatch)
    cases = _populate(verifier, "e")
    meter.take()
    seen = {}
    for kind, (account, typed) in cases.items():
        result = verifier.verify(account, typed)
        seen[kind] = (result.outcome, result.retry_after, result.label, result.code_number, meter.take())
    assert set(seen.values()) == {(REJECTED, 1.0, None, None, (TEST_SHAPE,))}, seen
    # every one was counted as a failure
    assert {verifier.status(account).failures for account, _ in cases.values()} == {1}


def test_mistyped_is_decided_by_every_format_not_the_accounts(verifier, monkeypatch):
    meter = ShapeMeter(monkeypatch)
    cases = _populate(verifier, "m")
    meter.take()
    for account, _ in cases.values():
        for typed in ("hello", "PDNV-H2W6-DE8S-0C1U", "1234", ""):
            assert verifier.verify(account, typed).outcome == MISTYPED
    assert meter.take() == ()
    assert {verifier.status(account).failures for account, _ in cases.values()} == {0}


def test_every_attempt_makes_the_calls_of_the_account_with_the_most_sets(db_url, monkeypatch):
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=0))
    meter = ShapeMeter(monkeypatch)
    wrong = code_set(label="wrong", count=1).codes[0]
    verifier.verify("nobody", wrong)
    assert meter.take() == ()  # no account exists: there is nothing to tell apart
    verifier.import_record(record_for(code_set(label="one")))
    meter.take()  # making the record hashed its codes
    verifier.verify("nobody", wrong)
    assert meter.take() == (TEST_SHAPE,)
    verifier.import_record(record_for(code_set(label="dear-1"), account="dear"))
    verifier.import_record(record_for(code_set(label="dear-2"), account="dear"), FORCE)
    verifier.import_record(record_for(code_set(label="fast", fmt="base32-24"), account="dear",
                                      params=HashParams.hmac_sha256()), FORCE)  # no Argon2id call
    meter.take()
    for account in ("nobody", "alice", "dear"):
        verifier.verify(account, wrong)
        assert meter.take() == (TEST_SHAPE, TEST_SHAPE), account
    verifier.revoke("dear", "dear-2")
    verifier.verify("nobody", wrong)
    assert meter.take() == (TEST_SHAPE, TEST_SHAPE)  # the mark stays until `init` recomputes it
    Verifier.initialise(store)
    verifier.verify("nobody", wrong)
    assert meter.take() == (TEST_SHAPE,)
    store.close()


def test_http_answers_are_the_same_for_unknown_and_known_accounts(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=1, max_failures=50))
    cases = _populate(verifier, "h")
    _, key = verifier.create_api_key("login", "verify")
    server = VerifierServer(url).start()
    try:
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}) as client:
            answers = set()
            for account, typed in cases.values():
                answer = client.post("/v1/verify", json={"account": account, "code": typed})
                headers = {k: v for k, v in answer.headers.items() if k not in ("date",)}
                answers.add((answer.status_code, answer.text, tuple(sorted(headers.items()))))
    finally:
        server.stop()
        store.close()
    assert len(answers) == 1, answers
    assert '"result":"rejected"' in answers.pop()[1].replace(" ", "")


def _bare_record(memory_kib, iterations, lanes=1, account="alice", label="shape"):
    """A record with the given parameters and made-up digests: refused before any hash is computed."""
    return VerifierRecord(account=account, label=label, epoch=0, format="base32-16", count=2,
                          fingerprint="0000-0000", hash=HashParams.argon2id(memory_kib, iterations, lanes),
                          salt=os.urandom(16), digests=(os.urandom(32), os.urandom(32)))


@pytest.mark.parametrize("memory_kib, iterations, lanes, accepted", [
    (19456, 2, 1, True),             # the default shape, what sealcodes writes
    (9728, 4, 1, False),             # the same memory x passes: the review's known account told apart
    (38912, 1, 1, False),            # the same memory x passes, 3x the time
    (19456, 2, 4, False),            # more lanes
    (4864, 2, 1, False),             # cheaper
    (1 << 20, 1, 1, False),          # 1 GiB
    (1 << 20, 16, 16, False),        # what a record itself may ask for at most
])
def test_only_the_policy_shape_is_imported(db_url, memory_kib, iterations, lanes, accepted):
    store = open_store(db_url)
    verifier = Verifier.initialise(store)
    record = _bare_record(memory_kib, iterations, lanes)
    if accepted:
        assert verifier.import_record(record).imported
    else:
        with pytest.raises(InvalidInputError, match=f"parameters \\(m={memory_kib} KiB, t={iterations}, "
                                                    f"p={lanes}\\) are not this verifier's \\(m=19456 KiB, t=2, p=1\\)"):
            verifier.import_record(record)
        assert verifier.status("alice").sets == ()
    fast = record_for(code_set(label="fast", fmt="base32-24"), account="bob", params=HashParams.hmac_sha256())
    assert verifier.import_record(fast).imported  # the fast hash of 112-bit formats has no shape
    store.close()


def test_an_account_holds_at_most_max_sets(db_url):
    """The review: `hmac-sha256` sets cost nothing, so a self-service key added 2000 to one account
    and made each of its attempts 100x slower."""
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy())  # the default: 4 sets
    fast = HashParams.hmac_sha256()
    for n in range(4):
        verifier.import_record(record_for(code_set(label=f"m/{n}", fmt="base32-24"), account="mallory", params=fast),
                               FORCE)
    fifth = record_for(code_set(label="m/4", fmt="base32-24"), account="mallory", params=fast)
    with pytest.raises(InvalidInputError, match="the account would hold 5 active sets; this verifier allows 4"):
        verifier.import_record(fifth, FORCE)
    rotated = record_for(code_set(label="m/0", epoch=1, fmt="base32-24"), account="mallory", params=fast)
    assert verifier.import_record(rotated, FORCE).superseded_epochs == (0,)  # a rotation replaces, adds nothing
    verifier.revoke("mallory", "m/3")
    assert verifier.import_record(fifth, FORCE).imported
    Verifier.initialise(store, cheap_policy(max_sets=1))
    narrow = Verifier(store)
    verifier.import_record(record_for(code_set(label="one"), account="carol"))
    with pytest.raises(InvalidInputError, match="this verifier allows 1"):
        narrow.import_record(record_for(code_set(label="two"), account="carol"), FORCE)
    store.close()


def test_a_1_gib_record_is_refused_by_the_cli_and_over_http(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    env = {"SEALCODES_VERIFIER_DB": url}
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    huge = _bare_record(1 << 20, 1).to_json()
    refused = run_cli("verifier", "import", "-", input=huge, env=env)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "parameters (m=1048576 KiB, t=1, p=1) are not this verifier's (m=64 KiB, t=1, p=1)" in refused.stderr
    store = open_store(url)
    verifier = Verifier(store)
    _, key = verifier.create_api_key("import", "import")
    server = VerifierServer(url).start()
    try:
        answer = httpx.post(server.base + "/v1/records", content=huge.encode(),
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert answer.status_code == 400 and "are not this verifier's" in answer.json()["message"]
    finally:
        server.stop()
    assert verifier.status("alice").sets == ()
    store.close()


def test_init_stores_the_shape_and_warns_of_sets_of_another(tmp_path, monkeypatch):
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    done = run_cli("verifier", "init", "--argon2", "128/2/1", "--max-sets", "2", env=env)
    assert done.returncode == 0 and "Argon2id 128/2/1 (KiB/passes/lanes), at most 2 sets per account" in done.stdout
    cheap = run_cli("verifier", "import", "-", input=record_for(code_set()).to_json(), env=env)  # 64/1/1
    assert cheap.returncode == 1 and "(m=64 KiB, t=1, p=1) are not this verifier's (m=128 KiB, t=2, p=1)" in cheap.stderr
    codes = code_set()
    fits = record_for(codes, params=HashParams.argon2id(128, 2, 1))
    assert run_cli("verifier", "import", "-", input=fits.to_json(), env=env).returncode == 0
    bad = run_cli("verifier", "init", "--argon2", "4/1/1", env=env)
    assert bad.returncode == 1 and "memory_kib must be an integer from 8" in bad.stderr
    # a new shape: the set made under the old one still works, hashed with its own parameters,
    # and init says that its account can be told apart until it is rotated
    moved = run_cli("verifier", "init", "--argon2", "64/1/1", env=env)
    assert moved.returncode == 0 and "1 active set(s) have other Argon2id parameters than 64/1/1" in moved.stderr
    meter = ShapeMeter(monkeypatch)
    store = open_store(env["SEALCODES_VERIFIER_DB"])
    verifier = Verifier(store)
    assert verifier.verify("alice", codes.codes[0]).accepted and meter.take() == ((128, 2, 1),)
    verifier.verify("nobody", codes.codes[1])
    assert meter.take() == ((64, 1, 1),)
    store.close()
