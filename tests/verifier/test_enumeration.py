"""Whether an account exists is not told by an attempt's answer, `retry_after`, headers or cost; and
the server bounds what a record may cost (docs/verifier.md, "What an attempt costs").

The cost is measured, not timed: every Argon2id computation goes through `record.hash_input`, and
the meter adds up memory x passes of each. The review found: a code of a format the account does
not use answered `mistyped` (no hash) on existing accounts only; `hmac-sha256` accounts answered in
a tenth of the time; a spent code answered without `retry_after`; records could ask for 1 GiB."""

from __future__ import annotations

import os

import httpx
import pytest

import sealcodes.verifier.record as record_module
from _support import run_cli
from _vsupport import CHEAP_INIT, TEST_PARAMS, VerifierServer, cheap_policy, code_set, record_for
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import ACCEPTED, MISTYPED, REJECTED, Policy, Principal, Verifier, open_store
from sealcodes.verifier.record import HashParams, VerifierRecord

FORCE = Principal.local(force=True)


class WorkMeter:
    """Argon2id work done (memory KiB x passes), whatever it was for."""

    def __init__(self, monkeypatch):
        self.work = 0
        real = record_module.hash_input

        def metered(params, salt, data):
            if params.scheme == "argon2id":
                self.work += params.memory_kib * params.iterations
            return real(params, salt, data)

        monkeypatch.setattr(record_module, "hash_input", metered)

    def take(self) -> int:
        work, self.work = self.work, 0
        return work


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


def test_every_refused_attempt_answers_and_costs_the_same(verifier, monkeypatch):
    meter = WorkMeter(monkeypatch)
    cases = _populate(verifier, "e")
    meter.take()
    seen = {}
    for kind, (account, typed) in cases.items():
        result = verifier.verify(account, typed)
        seen[kind] = (result.outcome, result.retry_after, result.label, result.code_number, meter.take())
    assert set(seen.values()) == {(REJECTED, 1.0, None, None, TEST_PARAMS.memory_kib * TEST_PARAMS.iterations)}, seen
    # every one was counted as a failure
    assert {verifier.status(account).failures for account, _ in cases.values()} == {1}


def test_mistyped_is_decided_by_every_format_not_the_accounts(verifier, monkeypatch):
    meter = WorkMeter(monkeypatch)
    cases = _populate(verifier, "m")
    meter.take()
    for account, _ in cases.values():
        for typed in ("hello", "PDNV-H2W6-DE8S-0C1U", "1234", ""):
            assert verifier.verify(account, typed).outcome == MISTYPED
    assert meter.take() == 0
    assert {verifier.status(account).failures for account, _ in cases.values()} == {0}


def test_the_attempt_cost_follows_the_most_costly_account(db_url, monkeypatch):
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=0))
    meter = WorkMeter(monkeypatch)
    wrong = code_set(label="wrong", count=1).codes[0]
    verifier.verify("nobody", wrong)
    assert meter.take() == 0  # no account exists: there is nothing to tell apart
    verifier.import_record(record_for(code_set(label="cheap")))
    meter.take()  # making the record hashed its codes
    verifier.verify("nobody", wrong)
    assert meter.take() == 64
    verifier.import_record(record_for(code_set(label="dear"), account="dear", params=HashParams.argon2id(256, 2, 1)))
    meter.take()
    for account in ("nobody", "alice", "dear"):
        verifier.verify(account, wrong)
        assert meter.take() == 512, account
    verifier.revoke("dear")
    verifier.verify("nobody", wrong)
    assert meter.take() == 512  # the mark stays until `init` recomputes it
    Verifier.initialise(store)
    verifier.verify("nobody", wrong)
    assert meter.take() == 64
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


def _bare_record(memory_kib, iterations, lanes=1, account="alice"):
    """A record with the given cost and made-up digests: refused before any hash is computed."""
    return VerifierRecord(account=account, label="cost", epoch=0, format="base32-16", count=2,
                          fingerprint="0000-0000", hash=HashParams.argon2id(memory_kib, iterations, lanes),
                          salt=os.urandom(16), digests=(os.urandom(32), os.urandom(32)))


@pytest.mark.parametrize("memory_kib, iterations, accepted", [
    (19456, 2, True),            # the default cost
    (9728, 1, True),             # a quarter of it
    (19456, 8, True),            # 4x, in passes
    (77824, 2, True),            # 4x, in memory
    (9727, 1, False),            # just under a quarter
    (19456, 9, False),           # just over 4x
    (77825, 1, False),           # memory over 4x, though the cost is within
    (1 << 20, 1, False),         # 1 GiB
    (1 << 20, 16, False),        # what record v1 itself allows at most
])
def test_the_default_cost_range(db_url, memory_kib, iterations, accepted):
    store = open_store(db_url)
    verifier = Verifier.initialise(store)
    record = _bare_record(memory_kib, iterations)
    if accepted:
        assert verifier.import_record(record).imported
    else:
        with pytest.raises(InvalidInputError, match="verifier's (range|limit)"):
            verifier.import_record(record)
        assert verifier.status("alice").sets == ()
    store.close()


def test_an_accounts_sets_together_stay_within_the_range(db_url):
    store = open_store(db_url)
    verifier = Verifier.initialise(store, Policy(max_cost=4 * 19456 * 2))
    verifier.import_record(_bare_record(19456, 4))  # half the limit
    second = VerifierRecord(**{**_bare_record(19456, 4).__dict__, "label": "second"})
    verifier.import_record(second, FORCE)
    third = VerifierRecord(**{**_bare_record(19456, 2).__dict__, "label": "third"})
    with pytest.raises(InvalidInputError, match="attempt cost .* would be 194560, above this verifier's limit of 155648"):
        verifier.import_record(third, FORCE)
    rotated = VerifierRecord(**{**_bare_record(19456, 4).__dict__, "epoch": 1})  # replaces the first
    assert verifier.import_record(rotated, FORCE).superseded_epochs == (0,)
    store.close()


def test_a_1_gib_record_is_refused_by_the_cli_and_over_http(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    env = {"SEALCODES_VERIFIER_DB": url}
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    huge = _bare_record(1 << 20, 1).to_json()
    refused = run_cli("verifier", "import", "-", input=huge, env=env)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "memory (1048576 KiB) is above this verifier's limit of 77824 KiB" in refused.stderr
    store = open_store(url)
    verifier = Verifier(store)
    _, key = verifier.create_api_key("import", "import")
    server = VerifierServer(url).start()
    try:
        answer = httpx.post(server.base + "/v1/records", content=huge.encode(),
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert answer.status_code == 400 and "above this verifier's limit" in answer.json()["message"]
    finally:
        server.stop()
    assert verifier.status("alice").sets == ()
    store.close()


def test_init_stores_the_range(tmp_path):
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    done = run_cli("verifier", "init", "--min-cost", "100", "--max-cost", "1000", "--max-memory", "512", env=env)
    assert done.returncode == 0 and "Argon2id cost 100..1000, memory up to 512 KiB" in done.stdout
    cheap = run_cli("verifier", "import", "-", input=record_for(code_set()).to_json(), env=env)  # cost 64
    assert cheap.returncode == 1 and "range 100..1000" in cheap.stderr
    fits = record_for(code_set(), params=HashParams.argon2id(128, 2, 1))
    assert run_cli("verifier", "import", "-", input=fits.to_json(), env=env).returncode == 0
    bad = run_cli("verifier", "init", "--min-cost", "2000", env=env)
    assert bad.returncode == 1 and "cost range" in bad.stderr
