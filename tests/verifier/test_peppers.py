"""Pepper rotation (docs/verifier.md, "Peppers"): `pepper add` makes a new pepper current for new
imports, older sets keep theirs until superseded, `pepper retire` is refused while an active set
uses the pepper, and every process that verifies refuses to start without a pepper an active set
(or the next import) needs."""

from __future__ import annotations

import os
import subprocess

import pytest

from _support import console_script, run_cli
from _vsupport import CHEAP_INIT, cheap_policy, code_set, record_for
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import Principal, Verifier, VerifierConfigError, open_store
from sealcodes.verifier.record import pepper_id

OLD, NEW = bytes(range(32)), bytes(range(100, 132))
FORCE = Principal.local(force=True)


def test_add_and_retire_round_trip(db_url):
    store = open_store(db_url)
    first = Verifier.initialise(store, cheap_policy(), pepper=OLD)
    alice, bob = code_set(label="alice"), code_set(label="bob")
    first.import_record(record_for(alice, account="alice"))
    assert first.add_pepper(NEW) == (pepper_id(NEW), True)
    first.import_record(record_for(bob, account="bob"))
    by_id = {row.pepper_id: row for row in first.peppers()}
    assert (by_id[pepper_id(OLD)].active_sets, by_id[pepper_id(NEW)].active_sets) == (1, 1)
    assert by_id[pepper_id(NEW)].current and not by_id[pepper_id(OLD)].current
    # a process with both checks both; with only one, it refuses to start
    both = Verifier(store, pepper=[NEW, OLD])
    assert both.verify("alice", alice.codes[0]).accepted and both.verify("bob", bob.codes[0]).accepted
    for only in ([NEW], [OLD], None):
        with pytest.raises(VerifierConfigError):
            Verifier(store, pepper=only)
    with pytest.raises(InvalidInputError, match="1 active set"):
        both.retire_pepper(pepper_id(OLD))
    with pytest.raises(InvalidInputError, match="current one"):
        both.retire_pepper(pepper_id(NEW))
    # alice rotates: her new set takes the current pepper, the old pepper is no longer needed
    both.import_record(record_for(code_set(label="alice", epoch=1), account="alice"), FORCE)
    both.retire_pepper(pepper_id(OLD))
    assert [r.retired_at is not None for r in both.peppers() if r.pepper_id == pepper_id(OLD)] == [True]
    alone = Verifier(store, pepper=NEW)
    assert alone.verify("alice", code_set(label="alice", epoch=1).codes[1]).accepted
    with pytest.raises(InvalidInputError, match="no registered"):
        alone.retire_pepper(pepper_id(OLD))
    stored = {bytes(r[0]) for r in store._fetch("SELECT digest FROM codes")}
    assert stored.isdisjoint(record_for(bob, account="bob").digests)  # still peppered
    store.close()


def test_the_cli_and_the_server_refuse_to_start_without_a_needed_pepper(tmp_path):
    old_file, new_file = tmp_path / "old.pepper", tmp_path / "new.pepper"
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    assert run_cli("verifier", "init", *CHEAP_INIT, "--create-pepper", str(old_file), env=env).returncode == 0
    with_old = {**env, "SEALCODES_VERIFIER_PEPPER_FILE": str(old_file)}
    codes = code_set()
    assert run_cli("verifier", "import", "-", input=record_for(codes).to_json(), env=with_old).returncode == 0
    added = run_cli("verifier", "pepper", "add", "--create", str(new_file), env=env)
    assert added.returncode == 0 and "is now current for new imports" in added.stdout
    assert oct(os.stat(new_file).st_mode & 0o777) == "0o600"
    old_id = [line.split()[0] for line in run_cli("verifier", "pepper", "list", env=env).stdout.splitlines()
              if "1 active sets" in line][0]
    listed = run_cli("verifier", "pepper", "list", env=env).stdout
    assert "current" in listed and old_id in listed
    with_new = {**env, "SEALCODES_VERIFIER_PEPPER_FILE": str(new_file)}
    refused = run_cli("verifier", "verify", "alice", input=codes.codes[0] + "\n", env=with_new)
    assert refused.returncode == 1 and f"do not include pepper {old_id}" in refused.stderr
    server = subprocess.run([console_script("sealcodes"), "verifier", "serve", "--listen", "127.0.0.1:1"],
                            env={**os.environ, **with_new}, capture_output=True, text=True, timeout=60)
    assert server.returncode == 1 and f"pepper {old_id}" in server.stderr and "Traceback" not in server.stderr
    both = {**env, "SEALCODES_VERIFIER_PEPPER_FILE": f"{new_file}:{old_file}"}
    assert run_cli("verifier", "verify", "alice", input=codes.codes[0] + "\n", env=both).returncode == 0
    also = run_cli("verifier", "--pepper-file", str(old_file), "--pepper-file", str(new_file), "status", "alice", env=env)
    assert also.returncode == 0
    retire = run_cli("verifier", "pepper", "retire", old_id, env=env)
    assert retire.returncode == 1 and "active set(s) still use this pepper" in retire.stderr
    assert run_cli("verifier", "revoke", "alice", "--yes", env=both).returncode == 0
    assert run_cli("verifier", "pepper", "retire", old_id, env=env).returncode == 0
    assert run_cli("verifier", "status", "alice", env=with_new).returncode == 0


def test_peppers_in_use_are_those_of_active_sets(db_url):
    """The start-up check reads the peppers of active sets with one index probe per pepper
    (schema 4): sets without pepper count as "", retired sets count for nothing."""
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy())
    assert store.pepper_ids_in_use() == set()
    verifier.import_record(record_for(code_set(label="a"), account="a"))
    peppers = [bytes([n]) * 32 for n in (1, 2, 3)]
    for n, pepper in enumerate(peppers):
        verifier.add_pepper(pepper)
        for account in (f"p{n}-x", f"p{n}-y"):
            verifier.import_record(record_for(code_set(label=account), account=account))
    verifier.revoke("p1-x")
    verifier.revoke("p1-y")
    assert store.pepper_ids_in_use() == {"", pepper_id(peppers[0]), pepper_id(peppers[2])}
    verifier.revoke("a")
    assert store.pepper_ids_in_use() == {pepper_id(peppers[0]), pepper_id(peppers[2])}
    store.close()
