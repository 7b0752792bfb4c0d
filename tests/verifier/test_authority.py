"""Who may change which codes (docs/verifier.md, "Who may do what"): API key scopes, account
patterns and the import rules, in the library (SQLite and PostgreSQL) and over real HTTP.

The attacks of the review, each refused: the PAM host's key imports a record whose codes the
attacker knows (for root); an import key replaces an active set, adds a second label to an account,
or jumps the epoch without the device's proof; a key limited to some accounts touches another."""

from __future__ import annotations

import json

import httpx
import pytest

from _support import run_cli
from _vsupport import CHEAP_INIT, VerifierServer, cheap_policy, code_set, record_for, store_url
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import Forbidden, Principal, Verifier, open_store
from sealcodes.verifier.auth import normalize_pattern, pattern_matches
from sealcodes.verifier.store import MIGRATIONS

FORCE = Principal.local(force=True)


@pytest.fixture
def verifier(db_url):
    store = open_store(db_url)
    yield Verifier.initialise(store, cheap_policy(delay_base_s=0))
    store.close()


def _key(verifier, scope, accounts="*"):
    key_id, token = verifier.create_api_key(f"{scope}-key", scope, accounts)
    principal = verifier.check_api_key(token)
    assert principal.key_id == key_id and principal.scope == scope
    return principal, token


def _events(verifier, account=None):
    return [(a.event, a.detail) for a in verifier.audit(account, 1000)]


def test_verify_key_cannot_import_revoke_unlock_or_read(verifier):
    """The PAM host's key: it verifies, and nothing else."""
    key, token = _key(verifier, "verify")
    mallory = code_set(label="root-codes", response=bytes(32))
    with pytest.raises(Forbidden, match="scope verify"):
        verifier.import_record(record_for(mallory, account="root"), key)
    for call in (lambda: verifier.status("root", key), lambda: verifier.revoke("root", None, key),
                 lambda: verifier.unlock("root", key), lambda: verifier.audit("root", 10, key),
                 lambda: verifier.audit(None, 10, key)):
        with pytest.raises(Forbidden):
            call()
    assert verifier.status("root").sets == ()
    refusals = [detail for event, detail in _events(verifier) if event == "forbidden"]
    assert len(refusals) == 6 and all(key.key_id in d and "(verify)" in d for d in refusals)
    assert token not in repr(_events(verifier))  # the key id, never the key


def test_import_key_takes_first_sets_only(verifier):
    key, _ = _key(verifier, "import")
    first = code_set(epoch=3)
    assert verifier.import_record(record_for(first), key).imported  # any epoch for a first set
    # the attacker's own codes, as a rotation of alice's set, as a jump to the last epoch, as a
    # second label: all refused without the device's proof
    for record in (record_for(code_set(epoch=4, response=bytes(32))),
                   record_for(code_set(epoch=2**32 - 1, response=bytes(32))),
                   record_for(code_set(label="second-label", response=bytes(32)))):
        with pytest.raises(Forbidden, match="needs the device's proof; an admin may force a replacement"):
            verifier.import_record(record, key)
    state = verifier.status("alice")
    assert [(s.label, s.epoch, s.fingerprint) for s in state.sets] == [("github.com/alice", 3, first.fingerprint)]
    assert verifier.verify("alice", first.codes[0]).accepted
    assert [e for e, _ in _events(verifier, "alice")].count("forbidden") == 3


def test_same_record_again_is_unchanged_for_import_and_admin(verifier):
    record = record_for(code_set())
    importer, _ = _key(verifier, "import")
    admin, _ = _key(verifier, "admin")
    assert verifier.import_record(record, importer).imported
    assert not verifier.import_record(record, importer).imported
    assert not verifier.import_record(record, admin).imported
    assert [e for e, _ in _events(verifier, "alice")] == ["import"]


def test_forced_replacement_by_admin_is_audited(verifier):
    importer, _ = _key(verifier, "import")
    admin, token = _key(verifier, "admin")
    lost = code_set(epoch=0)
    verifier.import_record(record_for(lost), importer)
    new = code_set(epoch=1, response=bytes(range(1, 33)))  # the new device
    result = verifier.import_record(record_for(new), admin)
    assert result.imported and result.forced and result.superseded_epochs == (0,)
    forced = [d for e, d in _events(verifier, "alice") if e == "forced-replace"]
    assert forced == [f"key {admin.key_id}: epoch 0 -> 1, without the device's proof"]
    assert token not in repr(_events(verifier))
    assert not verifier.verify("alice", lost.codes[0]).accepted
    assert verifier.verify("alice", new.codes[0]).accepted
    # an admin may also add a second label without a proof; that too is a forced replacement
    assert verifier.import_record(record_for(code_set(label="vpn")), admin).forced
    assert [d for e, d in _events(verifier, "alice") if e == "forced-replace"][-1].endswith(
        "epoch none of this label -> 0, without the device's proof")


def test_the_cli_imports_by_the_import_rules_and_forces_only_when_asked(tmp_path):
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    first, second = code_set(epoch=0), code_set(epoch=1, response=bytes(32))
    assert run_cli("verifier", "import", "-", input=record_for(first).to_json(), env=env).returncode == 0
    refused = run_cli("verifier", "import", "-", input=record_for(second).to_json(), env=env)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "needs the device's proof" in refused.stderr and "--force" in refused.stderr
    forced = run_cli("verifier", "import", "--force", "-", input=record_for(second).to_json(), env=env)
    assert forced.returncode == 0 and "forced replacement, audited" in forced.stdout
    audit = [json.loads(line) for line in run_cli("verifier", "audit", "--json", env=env).stdout.splitlines()]
    assert [(a["event"], a["detail"]) for a in audit if a["event"] == "forced-replace"] == [
        ("forced-replace", "key cli: epoch 0 -> 1, without the device's proof")]


def test_account_patterns(verifier):
    importer, _ = _key(verifier, "import", "corp/*")
    checker, _ = _key(verifier, "verify", "corp/*")
    codes = code_set(label="corp/alice")
    assert verifier.import_record(record_for(codes, account="corp/alice"), importer).imported
    for account in ("root", "corp", "xcorp/alice", "Corp/alice"):
        with pytest.raises(Forbidden, match="limited to accounts matching 'corp/\\*'"):
            verifier.import_record(record_for(code_set(label="x"), account=account), importer)
    with pytest.raises(Forbidden):
        verifier.verify("root", codes.codes[0], checker)
    assert verifier.verify("corp/alice", codes.codes[0], checker).accepted
    single, _ = _key(verifier, "admin", "corp/bob")
    with pytest.raises(Forbidden):
        verifier.status("corp/alice", single)
    with pytest.raises(Forbidden, match="name an account"):
        verifier.audit(None, 10, single)
    assert verifier.status("corp/bob", single).sets == ()


@pytest.mark.parametrize("pattern, account, matches", [
    ("*", "anything/at all", True),
    ("*", "", True),
    ("corp/*", "corp/", True),
    ("corp/*", "corp/a/b", True),
    ("corp/*", "corp", False),
    ("corp/*", "acorp/x", False),
    ("*@example.org", "alice@example.org", True),
    ("*@example.org", "alice@example.org.evil", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "a-b-b-c", True),
    ("a*b*c", "acb", False),
    ("a?c", "abc", False),  # only `*` is special
    ("a?c", "a?c", True),
    ("[ab]", "a", False),
    ("alice", "alice", True),
    ("alice", "alice2", False),
])
def test_pattern_matching(pattern, account, matches):
    assert pattern_matches(pattern, account) is matches


def test_patterns_are_normalised_like_accounts(verifier):
    assert normalize_pattern("ｃorp/*") == "corp/*"
    _, token = verifier.create_api_key("x", "verify", "ｃorp/*")
    assert verifier.check_api_key(token).accounts == "corp/*"
    with pytest.raises(Exception, match="invisible"):
        verifier.create_api_key("x", "verify", "corp\u200b/*")
    with pytest.raises(Exception, match="scope"):
        verifier.create_api_key("x", "root")


@pytest.mark.parametrize("pattern", ["\uff41\uff0a", "\uff0a", "\ufe61", "corp/\ufe61", "corp/\uff0a/x"])
def test_no_character_but_the_asterisk_typed_is_a_wildcard(verifier, pattern):
    """The review: NFKC turned a full-width (U+FF0A) or small (U+FE61) asterisk into `*`, so a
    portal making `--accounts "$USERNAME"` for a user named `ａ＊` made a key for every account
    starting with `a`."""
    with pytest.raises(InvalidInputError, match="reads as '\\*'"):
        normalize_pattern(pattern)
    with pytest.raises(InvalidInputError):
        verifier.create_api_key("portal", "import", pattern)
    with pytest.raises(InvalidInputError):
        verifier.create_api_key("portal", "import", account=pattern)
    assert verifier.api_keys() == []


def test_a_key_for_one_exact_account(verifier, tmp_path):
    key, _ = _key_for_account(verifier, "bob")
    assert key.accounts == "bob" and key.may("import", "bob") and not key.may("import", "bob2")
    full_width, _ = _key_for_account(verifier, "\uff42ob")  # normalised like an account
    assert full_width.accounts == "bob"
    with pytest.raises(InvalidInputError, match="cannot be limited to it exactly"):
        verifier.create_api_key("portal", "import", account="b*")
    with pytest.raises(InvalidInputError, match="not both"):
        verifier.create_api_key("portal", "import", "corp/*", account="bob")
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "cli.db")}
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    made = run_cli("verifier", "api-key", "create", "portal", "--scope", "import", "--account", "carol", env=env)
    assert made.returncode == 0 and "accounts carol)" in made.stderr
    refused = run_cli("verifier", "api-key", "create", "portal", "--account", "c\uff0a", env=env)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    refused = run_cli("verifier", "api-key", "create", "portal", "--accounts", "c\uff0a", env=env)
    assert refused.returncode == 1 and "reads as '*'" in refused.stderr


def _key_for_account(verifier, account):
    _, token = verifier.create_api_key("portal", "import", account=account)
    return verifier.check_api_key(token), token


def test_existing_keys_become_verify_only(db_url):
    """A database of the previous schema: its keys could do everything; after migration, verify only."""
    store = open_store(db_url)
    with store._connection() as connection:
        with store._write_transaction(connection) as cursor:
            for step in MIGRATIONS[:2]:
                for statement in step:
                    cursor.execute(statement.format(**store.TYPES))
            cursor.execute(store.sql("INSERT INTO settings (name, value) VALUES (?, ?)"), ("schema_version", "2"))
            cursor.execute(store.sql("INSERT INTO api_keys (key_id, digest, name, created_at) VALUES (?, ?, ?, ?)"),
                           ("0123456789ab", bytes(32), "old", 0.0))
    verifier = Verifier.initialise(store, cheap_policy())
    [key] = verifier.api_keys()
    assert (key.key_id, key.scope, key.accounts) == ("0123456789ab", "verify", "*")
    store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    url = store_url(request, tmp_path_factory.mktemp("authority"))
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=0))
    server = VerifierServer(url).start()
    yield server, verifier
    log = server.stop()
    store.close()
    assert "Traceback" not in log


def _client(server, token):
    return httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_http_scopes(served):
    server, verifier = served
    _, verify_token = _key(verifier, "verify")
    _, import_token = _key(verifier, "import", "http-*")
    _, admin_token = _key(verifier, "admin")
    account = "http-root"
    mallory = record_for(code_set(label="root", epoch=1, response=bytes(32)), account=account).to_dict()
    calls = [("post", "/v1/records", {"json": mallory}), ("get", "/v1/accounts/status", {"params": {"account": account}}),
             ("post", "/v1/accounts/revoke", {"json": {"account": account}}),
             ("post", "/v1/accounts/unlock", {"json": {"account": account}}),
             ("get", "/v1/audit", {"params": {"account": account}})]
    with _client(server, verify_token) as verify:
        for method, path, options in calls:
            answer = getattr(verify, method)(path, **options)
            assert answer.status_code == 403 and answer.json()["error"] == "forbidden", path
            assert "scope verify" in answer.json()["message"]
    with _client(server, import_token) as importer:
        for method, path, options in calls[1:]:
            assert getattr(importer, method)(path, **options).status_code == 403
        assert importer.post("/v1/verify", json={"account": account, "code": "x"}).status_code == 403
        other = record_for(code_set(label="x"), account="root").to_dict()
        answer = importer.post("/v1/records", json=other)
        assert answer.status_code == 403 and "limited to accounts matching" in answer.json()["message"]
        first = record_for(code_set(label="root"), account=account).to_dict()
        assert importer.post("/v1/records", json=first).status_code == 201
        answer = importer.post("/v1/records", json=mallory)  # a replacement with the attacker's codes
        assert answer.status_code == 403
        assert answer.json()["message"] == ("rotating an active set needs the device's proof; an admin may force "
                                            "a replacement")
    with _client(server, admin_token) as admin:
        answer = admin.post("/v1/records", json=mallory)
        assert answer.status_code == 201 and answer.json()["forced"] is True
        events = admin.get("/v1/audit", params={"limit": 1000}).json()["events"]
        refused = [e["detail"] for e in events if e["event"] == "forbidden"]
        # 5 by the verify key (refused on its scope before any body is read), 7 by the import key
        assert len(refused) == 12 and all("key " in d for d in refused)
        assert [e["event"] for e in events if e["account"] == account][-2:] == ["import", "forced-replace"]
        assert admin.post("/v1/verify", json={"account": account, "code": "x"}).status_code == 403
    text = json.dumps(events)
    assert all(token not in text for token in (verify_token, import_token, admin_token))
