"""Account names (docs/spec.md section 13.5): NFKC, default-ignorable code points refused, then the
label rules; the same at import and at verify, and stored accounts migrated safely. The review:
`ａlice` (full-width) and `alice` + U+200B were accounts apart from `alice`."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

import _independent_verifier as independent
from _support import run_cli
from _vsupport import VerifierServer, cheap_policy, code_set, record_for
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import Verifier, open_store
from sealcodes.verifier.record import normalize_account
from sealcodes.verifier.store import MIGRATIONS


ACCOUNT_VECTORS = json.loads((pathlib.Path(__file__).parent.parent / "vectors" / "verifier-accounts.json").read_text())


@pytest.mark.parametrize("case", ACCOUNT_VECTORS["cases"], ids=lambda c: ascii(c["typed"])[:30])
def test_vectors_in_both_implementations(case):
    assert independent.account_name(case["typed"]) == case["normal"]
    if case["normal"] is None:
        with pytest.raises(InvalidInputError):
            normalize_account(case["typed"])
    else:
        assert normalize_account(case["typed"]) == case["normal"]


@pytest.mark.parametrize("typed, stored", [
    ("alice", "alice"),
    ("\uff41lice", "alice"),             # full-width a
    ("\ufb01le", "file"),                # the fi ligature
    ("alice\u2460", "alice1"),           # circled digit one
    ("e\u0301lodie", "\u00e9lodie"),     # NFD becomes NFC
    ("Alice", "Alice"),                  # case is kept: a Unix login is case-sensitive
    ("github.com/alice", "github.com/alice"),
    ("\u0430lice", "\u0430lice"),        # Cyrillic a: a different letter, not folded (docs/spec.md 13.5)
])
def test_normal_form(typed, stored):
    assert normalize_account(typed) == stored
    assert normalize_account(stored) == stored  # normalising twice changes nothing


@pytest.mark.parametrize("typed", [
    "alice\u200b",           # zero width space
    "al\u00adice",           # soft hyphen
    "\u200dalice",           # zero width joiner
    "alice\u2066",           # bidi isolate
    "m\u202eallory",         # bidi override
    "alice\ufe0f",           # variation selector
    "alice\U000e0041",       # tag character
    "\u3164alice",           # Hangul filler
    "alice\ufeff",           # byte order mark
    "alice\u2060",           # word joiner
    " alice", "alice\u3000", "al\u0007ice", "", "a" * 129,
])
def test_refused(typed):
    with pytest.raises(InvalidInputError):
        normalize_account(typed)


def test_one_account_at_import_and_at_verify(db_url):
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=0))
    codes = code_set(count=3)
    assert verifier.import_record(record_for(codes, account="\uff41lice")).account == "alice"
    assert verifier.verify("alice", codes.codes[0]).accepted
    assert verifier.verify("\uff41lice", codes.codes[1]).accepted  # the same account
    with pytest.raises(InvalidInputError, match="invisible character \\(U\\+200B\\)"):
        verifier.verify("alice\u200b", codes.codes[2])
    with pytest.raises(InvalidInputError):
        verifier.import_record(record_for(code_set(label="x"), account="bob\u200b"))
    assert store.accounts() == ["alice"]
    store.close()


def test_http_refuses_invisible_characters(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy())
    _, key = verifier.create_api_key("login", "verify")
    server = VerifierServer(url).start()
    try:
        answer = httpx.post(server.base + "/v1/verify", json={"account": "root\u200b", "code": "x"},
                            headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_input"
    finally:
        server.stop()
        store.close()


def _schema_2_database(store, accounts):
    """A database of the previous schema, with one active set per account (raw rows: the code of
    this release writes the new schema only)."""
    with store._connection() as connection:
        with store._write_transaction(connection) as cursor:
            for step in MIGRATIONS[:2]:
                for statement in step:
                    cursor.execute(statement.format(**store.TYPES))
            run = lambda sql, params=(): cursor.execute(store.sql(sql), params)  # noqa: E731
            run("INSERT INTO settings (name, value) VALUES (?, ?)", ("schema_version", "2"))
            run("INSERT INTO settings (name, value) VALUES (?, ?)", ("pepper_id", ""))
            for account, failures in accounts:
                record = record_for(code_set(label="lab", count=2), account="placeholder")
                run("INSERT INTO code_sets (account, label, epoch, format, count, fingerprint, scheme, memory_kib, "
                    "iterations, lanes, salt, pepper_id, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING id", (account, "lab", 0, "base32-16", 2, record.fingerprint, "argon2id", 64, 1, 1,
                                     record.salt, "", 1.0))
                set_id = cursor.fetchone()[0]
                for idx, digest in enumerate(record.digests):
                    run("INSERT INTO codes (set_id, idx, digest) VALUES (?, ?, ?)", (set_id, idx, digest))
                run("INSERT INTO accounts (account, failures) VALUES (?, ?)", (account, failures))
                run("INSERT INTO audit (at, event, account) VALUES (?, ?, ?)", (1.0, "import", account))


def test_stored_accounts_are_migrated_safely(db_url):
    store = open_store(db_url)
    _schema_2_database(store, [
        ("\uff41lice", 3),       # alone: renamed alice, its failure counter with it
        ("bob", 0), ("\uff42ob", 0),  # bob is already normal: the other spelling's set is retired
        ("carol\u200b", 0),      # refused by the rule: retired
        ("\uff44ave", 0), ("d\uff41ve", 0),  # two spellings, neither normal: both retired
        ("erin", 1),             # untouched
    ])
    Verifier.initialise(store, cheap_policy())
    notes = sorted(store.migration_notes)
    assert notes == sorted([("renamed", "\uff41lice", "alice"), ("retired", "\uff42ob", "bob"),
                            ("retired", "carol\u200b", None), ("retired", "\uff44ave", "dave"),
                            ("retired", "d\uff41ve", "dave")])
    active = {row[0] for row in store._fetch("SELECT account FROM code_sets WHERE retired_at IS NULL")}
    assert active == {"alice", "bob", "erin"}
    retired = store._fetch("SELECT account, retired_why FROM code_sets WHERE retired_at IS NOT NULL ORDER BY account")
    assert {why for _, why in retired} == {"account-name"} and len(retired) == 4
    assert store.account_state("alice").failures == 3
    assert [a.event for a in store.audit_rows("alice")] == ["import", "account-renamed"]
    assert [a.event for a in store.audit_rows("\uff42ob")] == ["import", "account-retired"]
    store.close()


def test_init_reports_what_the_migration_did(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    _schema_2_database(store, [("\uff41lice", 0), ("bob\u200b", 0)])
    store.close()
    done = run_cli("verifier", "--db", url, "init", "--min-cost", "8")
    assert done.returncode == 0 and "migrated from schema 2" in done.stdout
    assert "account \uff41lice renamed alice" in done.stderr  # full-width letters are printable, not escaped
    assert "renamed alice" in done.stderr and "account bob\\u200b: its sets are retired" in done.stderr


def test_ascii_names_need_no_ignorable_check():
    """normalize_account skips the invisible-character check for ASCII names (bulk imports of a
    million accounts spent a third of their time there): sound only while every
    default-ignorable code point lies above ASCII."""
    from sealcodes.verifier.record import DEFAULT_IGNORABLE

    assert min(low for low, _ in DEFAULT_IGNORABLE) > 0x7F
    assert normalize_account("alice@corp.example") == "alice@corp.example"
    with pytest.raises(InvalidInputError, match="U\\+00AD"):
        normalize_account("ali\u00adce")
