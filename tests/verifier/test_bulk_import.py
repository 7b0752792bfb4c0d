"""`sealcodes verifier import --bulk`: JSON lines of any size, read as they come, stored in batches,
resumable, with a progress line; on SQLite and a real PostgreSQL. Every import rule of a single
import holds for every record of a bulk import (scope, first set only without an active set,
proofs checked against stored commitments, cost range, peppers, audit): bulk is no way around them."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from _support import console_script, run_cli
from _vsupport import CHEAP_INIT, TEST_PARAMS, code_set, random_record_line
from sealcodes.verifier import Forbidden, ImportStopped, Verifier, open_store
from sealcodes.verifier.record import HashParams, PreviousSet, make_record

LABEL = "github.com/alice"
ALICE_R = [bytes([e + 1]) * 32 for e in range(3)]
OTHER_R = bytes(range(200, 232))


@pytest.fixture
def db(db_url, tmp_path):
    """An initialised database (cheap Argon2id allowed) with a pepper; its URL and the CLI's env."""
    pepper = tmp_path / "pepper"
    env = {"SEALCODES_VERIFIER_DB": db_url, "SEALCODES_VERIFIER_PEPPER_FILE": str(pepper)}
    assert run_cli("verifier", "init", *CHEAP_INIT, "--delay-base", "0", "--create-pepper", str(pepper),
                   env={"SEALCODES_VERIFIER_DB": db_url}).returncode == 0
    return db_url, env


def _count(url, sql, *params):
    store = open_store(url)
    try:
        return store._fetch(sql, params)[0][0]
    finally:
        store.close()


def _rows(url):
    """(sets, codes, import audit rows, distinct (account, label, epoch) of the sets)."""
    return (_count(url, "SELECT COUNT(*) FROM code_sets"), _count(url, "SELECT COUNT(*) FROM codes"),
            _count(url, "SELECT COUNT(*) FROM audit WHERE event = 'import'"),
            _count(url, "SELECT COUNT(*) FROM (SELECT DISTINCT account, label, epoch FROM code_sets) d"))


def _lines(count, prefix="user", seed=0):
    rng = random.Random(seed)
    return [random_record_line(f"{prefix}{i:05d}@corp", count=4, rng=rng) for i in range(count)]


def _import(env, *args, input=None):
    return run_cli("verifier", "import", "--bulk", *args, input=input, env=env, timeout=120)


def test_bulk_import_reports_progress_and_a_rerun_changes_nothing(db, tmp_path):
    url, env = db
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(_lines(250)) + "\n\n")  # a blank line is skipped
    first = _import(env, "--batch-size", "40", str(path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ("250 records: 250 imported, 0 unchanged (already imported), 0 forced "
                                    "replacements, 0 sets superseded")
    assert first.stderr.splitlines()[-1].startswith("import: 250 records (250 imported, 0 unchanged), ")
    assert _rows(url) == (250, 1000, 250, 250)
    again = _import(env, str(path))
    assert again.returncode == 0 and "250 records: 0 imported, 250 unchanged" in again.stdout
    assert _rows(url) == (250, 1000, 250, 250)


def test_a_bad_line_stops_the_import_and_a_rerun_stores_the_rest(db, tmp_path):
    url, env = db
    lines = _lines(120)
    broken = lines[:]
    broken[72] = broken[72][:-20]  # cut short: not JSON
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(broken) + "\n")
    stopped = _import(env, "--batch-size", "50", str(path))
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    assert "Error: line 73: a verifier record must be JSON; the 72 records before it are stored (a rerun skips " \
           "them)" in stopped.stderr
    assert _rows(url) == (72, 288, 72, 72)  # the batch in progress was stored up to the bad line
    path.write_text("\n".join(lines) + "\n")
    resumed = _import(env, "--batch-size", "50", str(path))
    assert resumed.returncode == 0 and "120 records: 48 imported, 72 unchanged" in resumed.stdout
    assert _rows(url) == (120, 480, 120, 120)


def test_an_import_killed_mid_batch_resumes_without_double_rows(db):
    """SIGKILL while a batch is half read: the batches committed stay, the one in progress leaves
    nothing; the rerun stores exactly the rest."""
    url, env = db
    lines = _lines(600, seed=1)
    process = subprocess.Popen([console_script("sealcodes"), "verifier", "import", "--bulk", "--batch-size", "100",
                                "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(os.environ, **env))
    try:
        process.stdin.write(("\n".join(lines[:250]) + "\n").encode())
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while _count(url, "SELECT COUNT(*) FROM code_sets") < 200:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)  # it now waits for the rest of its third batch
        assert _count(url, "SELECT COUNT(*) FROM code_sets") == 200
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdin.close()
        process.stderr.close()
    assert _rows(url) == (200, 800, 200, 200)
    rerun = _import(env, "--batch-size", "100", "-", input="\n".join(lines) + "\n")
    assert rerun.returncode == 0 and "600 records: 400 imported, 200 unchanged" in rerun.stdout
    assert _rows(url) == (600, 2400, 600, 600)


def _record(epoch, response, account="alice", label=LABEL, signer=None, params=TEST_PARAMS):
    codes = code_set(label=label, epoch=epoch, count=3, response=response)
    previous = None if signer is None else PreviousSet(bytearray(signer[0]), signer[1], signer[2])
    return make_record(codes, account=account, params=params, response=bytearray(response), previous=previous)


def _active(url, account="alice"):
    store = open_store(url)
    try:
        return [(row.label, row.epoch) for row in store.active_sets(account)]
    finally:
        store.close()


def test_bulk_keeps_the_import_rules(db, tmp_path):
    """A rotation without the device's proof, a record outside the cost range, an older epoch:
    each stops a bulk import at that record, refused as a single import is; a proven rotation in
    the same file as the set it replaces is taken; --force replaces, audited."""
    url, env = db
    path = tmp_path / "records.jsonl"
    first, proven = _record(0, ALICE_R[0]), _record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0))
    unproven = _record(2, OTHER_R)
    path.write_text(f"{random_record_line('bob')}\n{first.to_json()}\n{proven.to_json()}\n{unproven.to_json()}\n"
                    f"{random_record_line('carol')}\n")
    result = _import(env, str(path))
    assert result.returncode == 1
    assert "record 4 (alice, github.com/alice): rotating an active set needs the device's proof" in result.stderr
    assert "--force" in result.stderr and "the 3 records before it are stored" in result.stderr
    assert _active(url) == [(LABEL, 1)] and _active(url, "carol") == []
    audit = run_cli("verifier", "audit", "alice", "--json", env=env).stdout.splitlines()
    events = [json.loads(line)["event"] for line in audit]
    assert events == ["import", "supersede", "import", "forbidden"]
    assert json.loads(audit[-1])["detail"] == "key cli (local): rotate without proof"

    costly = _record(0, OTHER_R, account="dave", params=HashParams.argon2id(1 << 20, 1, 1))
    older = _record(0, ALICE_R[0])
    for bad, message in ((costly, "above this verifier's limit of 77824 KiB"),
                         (older, "already at epoch 1; epoch 0 is older")):
        path.write_text(bad.to_json() + "\n")
        refused = _import(env, str(path))
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    assert _active(url, "dave") == []

    path.write_text(f"{unproven.to_json()}\n{random_record_line('carol')}\n")
    forced = _import(env, "--force", str(path))
    assert forced.returncode == 0 and "2 records: 2 imported, 0 unchanged (already imported), 1 forced" in forced.stdout
    assert _active(url) == [(LABEL, 2)]
    assert run_cli("verifier", "audit", "alice", env=env).stdout.count("forced-replace") == 1


def test_bulk_sets_use_the_current_pepper_and_verify(db, tmp_path):
    url, env = db
    codes = code_set(count=3)
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(_lines(30) + [make_record(codes, account="alice", params=TEST_PARAMS).to_json()]))
    assert _import(env, str(path)).returncode == 0
    store = open_store(url)
    current = store.get_setting("pepper_id")
    assert current and {row.pepper_id for row in store.active_sets("alice")} == {current}
    assert store.pepper_ids_in_use() == {current}
    store.close()
    assert run_cli("verifier", "verify", "alice", input=codes.codes[1] + "\n", env=env).returncode == 0
    assert run_cli("verifier", "verify", "alice", input=codes.codes[1] + "\n", env=env).returncode == 1


def test_import_records_keeps_key_scopes_and_patterns(db):
    """The library's bulk import under an API key: a key limited to corp/* stops at bob, audited;
    a verify key imports nothing."""
    url, _ = db
    store = open_store(url)
    verifier = Verifier(store, pepper=[bytes.fromhex(open(_pepper_path(db)).read().strip())])
    corp = verifier.check_api_key(verifier.create_api_key("portal", "import", "corp/*")[1])
    checker = verifier.check_api_key(verifier.create_api_key("pam", "verify")[1])
    records = [make_record(code_set(label=f"corp/u{i}", count=2), account=f"corp/u{i}", params=TEST_PARAMS)
               for i in range(3)]
    bob = make_record(code_set(label="bob", count=2), account="bob", params=TEST_PARAMS)
    with pytest.raises(ImportStopped) as stop:
        verifier.import_records(records[:2] + [bob, records[2]], corp, batch_size=10)
    assert isinstance(stop.value.cause, Forbidden) and stop.value.record == bob
    assert (stop.value.summary.records, stop.value.summary.imported) == (2, 2)
    assert _active(url, "corp/u1") == [("corp/u1", 0)] and _active(url, "corp/u2") == [] and _active(url, "bob") == []
    with pytest.raises(ImportStopped) as none:
        verifier.import_records(records[2:], checker)
    assert isinstance(none.value.cause, Forbidden) and none.value.summary.records == 0
    refusals = [row.detail for row in verifier.audit() if row.event == "forbidden"]
    assert refusals == [f"key {corp.key_id} (import): import", f"key {checker.key_id} (verify): import"]
    store.close()


def _pepper_path(db):
    return db[1]["SEALCODES_VERIFIER_PEPPER_FILE"]


def test_bulk_input_limits(db, tmp_path):
    url, env = db
    long_line = tmp_path / "long.jsonl"
    with open(long_line, "wb") as handle:
        handle.write(b"{" + b" " * (1 << 20) + b"}\n")
    too_long = _import(env, str(long_line))
    assert too_long.returncode == 1 and "line 1 is longer than 1024 KiB" in too_long.stderr
    not_utf8 = tmp_path / "latin1.jsonl"
    not_utf8.write_bytes(random_record_line("ok").encode() + b"\n\xff\xfe\n")
    refused = _import(env, str(not_utf8))
    assert refused.returncode == 1 and "line 2 is not UTF-8 text; the 1 records before it are stored" in refused.stderr
    empty = _import(env, "-", input="\n\n")
    assert empty.returncode == 1 and "no verifier record in the input" in empty.stderr
    missing = _import(env, str(tmp_path / "none.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    # without --bulk the whole input is read first, so it stays capped, and says what to use
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"\n" * (16 * 1024 * 1024 + 1))
    capped = run_cli("verifier", "import", str(big), env=env)
    assert capped.returncode == 1 and "larger than 16 MiB: import it with --bulk" in capped.stderr


def _peak_rss_kib(argv, env) -> int:
    """The peak resident memory of one command (run by a wrapper that waits for it alone)."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
               "assert r.returncode == 0, r.stderr; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True,
                            env=dict(os.environ, **env), timeout=300)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_bulk_memory_stays_bounded_above_the_16_mib_input_cap(tmp_path):
    """20 MiB of records take no more memory than 1 MiB of them: they are read as they come."""
    url = "sqlite:///" + str(tmp_path / "v.db")
    env = {"SEALCODES_VERIFIER_DB": url}
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    rng = random.Random(5)
    sizes = {}
    for name, count in (("small", 1000), ("large", 20000)):
        path = tmp_path / f"{name}.jsonl"
        with open(path, "w") as handle:
            for i in range(count):
                handle.write(random_record_line(f"{name}{i}", count=10, rng=rng) + "\n")
        sizes[name] = (path.stat().st_size, _peak_rss_kib(
            [console_script("sealcodes"), "verifier", "import", "--bulk", str(path)], env))
    assert sizes["large"][0] > 16 * 1024 * 1024
    assert sizes["large"][1] < sizes["small"][1] + 10 * 1024, sizes  # KiB: not the 20 MiB of text, nor the records
    assert _count(url, "SELECT COUNT(*) FROM code_sets") == 21000
