"""`sealcodes verifier ...` and `generate/rotate --verifier-record`, run as the installed console
script against a SQLite file (and PostgreSQL for the shared commands), on the built-in emulator."""

from __future__ import annotations

import json
import os
import stat

import pytest

from _support import run_cli
from _vsupport import CHEAP_INIT, UNLIMITED_INIT, code_set, record_for

PIN = "correct horse"


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = "sqlite:///" + str(tmp_path / "v.db")
    monkeypatch.setenv("SEALCODES_VERIFIER_DB", url)
    return url


def verifier(*args, input=None, env=None):
    return run_cli("verifier", *args, input=input, env=env)


def test_generate_rotate_record_import_verify_end_to_end(isolated_dirs, db):
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    printed = run_cli("generate", "github.com/alice", "--verifier-record", "--account", "alice",
                      input=PIN + "\n")
    assert printed.returncode == 0, printed.stderr
    record = json.loads(printed.stdout)
    assert (record["account"], record["label"], record["epoch"], record["count"]) == ("alice", "github.com/alice", 0, 10)
    assert record["hash"] == {"scheme": "argon2id", "memory_kib": 19456, "iterations": 2, "lanes": 1}
    codes = json.loads(run_cli("generate", "github.com/alice", "--json", input=PIN + "\n").stdout)["codes"]
    assert all(code not in printed.stdout + printed.stderr for code in codes)
    assert record["fingerprint"] == json.loads(run_cli("generate", "github.com/alice", "--json",
                                                        input=PIN + "\n").stdout)["fingerprint"]
    assert verifier("init", *UNLIMITED_INIT, "--delay-base", "0").returncode == 0
    imported = verifier("import", "-", input=printed.stdout)
    assert imported.returncode == 0 and "imported" in imported.stdout
    ok = verifier("verify", "alice", input=codes[2].lower() + "\n")
    assert ok.returncode == 0 and "code 3" in ok.stdout and "9 left" in ok.stdout
    again = verifier("verify", "alice", input=codes[2] + "\n")
    assert (again.returncode, again.stdout, again.stderr.strip()) == (1, "", "rejected")
    mistyped = verifier("verify", "alice", input=codes[3][:-1] + "\n")
    assert mistyped.returncode == 1 and "mistyped" in mistyped.stderr
    # rotate: the record of epoch 1 supersedes epoch 0 at import
    rotated = run_cli("rotate", "github.com/alice", "--verifier-record", "--account", "alice", input=PIN + "\n")
    assert json.loads(rotated.stdout)["epoch"] == 1
    # record v2: the device proves it holds epoch 0's set, so no --force is needed
    assert "superseded epoch 0" in verifier("import", "-", input=rotated.stdout).stdout
    assert verifier("verify", "alice", input=codes[4] + "\n").returncode == 1
    status = verifier("status", "alice", "--json")
    assert json.loads(status.stdout)["sets"][0]["epoch"] == 1
    # recover prints the same kind of record for a given epoch
    recovered = run_cli("recover", "github.com/alice", "--fingerprint", record["fingerprint"], "--device",
                        "emulator", "--verifier-record", input=PIN + "\n")
    assert json.loads(recovered.stdout)["account"] == "github.com/alice"


def test_verify_exit_codes_lock_unlock_and_audit(db, tmp_path):
    assert verifier("init", *CHEAP_INIT, "--max-failures", "3", "--delay-base", "0").returncode == 0
    codes = code_set(count=3)
    path = tmp_path / "records.jsonl"
    path.write_text(record_for(codes).to_json() + "\n" + record_for(code_set(label="b"), account="bob").to_json() + "\n")
    assert verifier("import", str(path)).stdout.count("imported") == 2
    wrong = code_set(label="nope").codes
    assert [verifier("verify", "alice", input=c + "\n").returncode for c in wrong[:3]] == [1, 1, 2]
    locked = verifier("verify", "alice", input=codes.codes[0] + "\n")
    assert locked.returncode == 2 and "locked" in locked.stderr
    assert "LOCKED" in verifier("status", "alice").stdout
    assert verifier("unlock", "alice").stdout.startswith("unlocked")
    assert verifier("verify", "alice", input=codes.codes[0] + "\n").returncode == 0
    audit = verifier("audit", "alice").stdout.splitlines()
    assert [line.split("\t")[1] for line in audit] == ["import", "failure", "failure", "failure", "lockout",
                                                       "unlock", "success"]
    rows = [json.loads(line) for line in verifier("audit", "--json").stdout.splitlines()]
    assert {r["account"] for r in rows} == {"alice", "bob"}
    assert all(code not in verifier("audit").stdout for code in codes.codes)


def test_audit_text_cannot_be_forged_by_account_names(db):
    """The review: columns were separated by two spaces, so whoever may call verify (any verify key,
    or a user name at a login prompt) wrote a failure row that read like a success of root's."""
    verifier("init", *CHEAP_INIT, "--delay-base", "0")
    forged = ["root  github.com/root@0  code 1  (4 left)", "mallory  imported by key cli; admin unlocked root"]
    for account in forged:
        assert verifier("verify", account, input="PDNV-H2W6-DE8S-0C1K\n").returncode == 1
    lines = verifier("audit").stdout.splitlines()
    assert [line.split("\t")[1:3] for line in lines] == [["failure", account] for account in forged]
    assert all(len(line.split("\t")) == 7 for line in lines)
    assert lines[0].split("\t")[3:] == ["", "", "", "1 consecutive"]


def test_code_never_from_argv_and_stdin_capped(db):
    verifier("init", *CHEAP_INIT)
    extra = verifier("verify", "alice", "PDNV-H2W6-DE8S-0C1K")
    assert extra.returncode == 2 and "unexpected extra argument" in extra.stderr.lower()
    empty = verifier("verify", "alice", input="")
    assert empty.returncode == 1 and "no code given" in empty.stderr
    huge = verifier("verify", "alice", input="A" * 5000 + "\n")
    assert huge.returncode == 1 and "too long" in huge.stderr


def test_revoke_needs_confirmation(db):
    verifier("init", *CHEAP_INIT)
    codes = code_set(count=2)
    verifier("import", "-", input=record_for(codes).to_json())
    refused = verifier("revoke", "alice", input="")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    done = verifier("revoke", "alice", "--yes")
    assert done.returncode == 0 and "revoked alice" in done.stdout
    assert verifier("verify", "alice", input=codes.codes[0] + "\n").returncode == 1
    assert verifier("revoke", "alice", "--yes").returncode == 1


@pytest.mark.parametrize("content, message", [
    ("{", "must be JSON"),
    ('{"type": "sealcodes-verifier-record"}', "missing"),
    ("[]", "JSON object"),
    ("", "no verifier record"),
])
def test_bad_import_is_one_line_and_stores_nothing(db, content, message):
    verifier("init", *CHEAP_INIT)
    result = verifier("import", "-", input=content)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert verifier("audit").stdout == ""


def test_json_lines_with_one_bad_line_imports_nothing(db):
    verifier("init", *CHEAP_INIT)
    lines = record_for(code_set()).to_json() + "\n" + '{"type": 1}\n'
    result = verifier("import", "-", input=lines)
    assert result.returncode == 1 and "line 2" in result.stderr
    assert verifier("audit").stdout == ""


def test_untrusted_text_is_escaped(db):
    verifier("init", *CHEAP_INIT)
    codes = code_set(label="evil\u202etxt.exe")
    result = verifier("import", "-", input=record_for(codes, account="m\u2028allory").to_json())
    assert result.returncode == 0 and "\u202e" not in result.stdout and "\\u202e" in result.stdout
    assert "\u2028" not in result.stdout and "\\u2028" in result.stdout


def test_uninitialised_and_bad_urls(tmp_path):
    missing = run_cli("verifier", "--db", "sqlite:///" + str(tmp_path / "none.db"), "status", "a")
    assert missing.returncode == 1 and "verifier init" in missing.stderr
    bad = run_cli("verifier", "--db", "mysql://x", "status", "a")
    assert bad.returncode == 1 and "unknown database URL" in bad.stderr


def test_pepper_file_and_event_hook(db, tmp_path):
    pepper = tmp_path / "pepper"
    assert verifier("init", *CHEAP_INIT, "--create-pepper", str(pepper)).returncode == 0
    assert stat.S_IMODE(os.stat(pepper).st_mode) == 0o600
    assert verifier("init", *CHEAP_INIT, "--create-pepper", str(pepper)).returncode == 1  # never overwritten
    no_pepper = verifier("status", "alice")
    assert no_pepper.returncode == 1 and "pepper" in no_pepper.stderr
    log = tmp_path / "events.jsonl"
    hook = f"sh -c 'cat >> {log}'"
    env = {"SEALCODES_VERIFIER_PEPPER_FILE": str(pepper), "SEALCODES_VERIFIER_ON_EVENT": hook}
    codes = code_set(count=2)
    assert verifier("import", "-", input=record_for(codes).to_json(), env=env).returncode == 0
    assert verifier("verify", "alice", input=codes.codes[1] + "\n", env=env).returncode == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["set-imported", "code-used"]
    assert events[1]["code_number"] == 2 and events[1]["remaining"] == 1
    assert codes.codes[1] not in log.read_text()


def test_api_keys(db):
    verifier("init", *CHEAP_INIT)
    created = verifier("api-key", "create", "monitoring")
    token = created.stdout.strip()
    assert created.returncode == 0 and token.startswith("sck_") and token not in created.stderr
    key_id = token.split("_")[1]
    listed = verifier("api-key", "list").stdout
    assert key_id in listed and "active" in listed and token not in listed
    assert "verify" in listed.split(key_id)[1].splitlines()[0]  # least privilege by default
    portal = verifier("api-key", "create", "portal", "--scope", "import", "--accounts", "corp/*").stdout.strip()
    line = [row for row in verifier("api-key", "list").stdout.splitlines() if portal.split("_")[1] in row][0]
    assert " import " in line and "accounts corp/*" in line and "portal" in line
    bad = verifier("api-key", "create", "x", "--scope", "root")
    assert bad.returncode == 2 and "root" in bad.stderr
    assert verifier("api-key", "revoke", key_id).returncode == 0
    assert "revoked" in verifier("api-key", "list").stdout
    assert verifier("api-key", "revoke", key_id).returncode == 1


def test_same_commands_on_postgresql(postgres):
    url = postgres.fresh_url()
    env = {"SEALCODES_VERIFIER_DB": url}
    assert verifier("init", *CHEAP_INIT, env=env).returncode == 0
    codes = code_set(count=2)
    assert verifier("import", "-", input=record_for(codes).to_json(), env=env).returncode == 0
    assert verifier("verify", "alice", input=codes.codes[0] + "\n", env=env).returncode == 0
    assert verifier("verify", "alice", input=codes.codes[0] + "\n", env=env).returncode == 1
    assert "1 of 2 codes left" in verifier("status", "alice", env=env).stdout


def test_each_command_leaves_the_sqlite_file_whole(tmp_path, isolated_dirs, db):
    """Every command closes its store: SQLite folds its write-ahead log into the database file, so
    the file alone (a backup copies it) holds everything, and no -wal file is left beside it."""
    import shutil
    import sqlite3

    assert verifier("init", *CHEAP_INIT).returncode == 0
    assert verifier("import", "-", input=record_for(code_set("whole file")).to_json()).returncode == 0
    path = tmp_path / "v.db"
    assert not (tmp_path / "v.db-wal").exists()
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        assert connection.execute("SELECT count(*) FROM code_sets").fetchone()[0] == 1
        assert connection.execute("SELECT count(*) FROM codes").fetchone()[0] == 10
    finally:
        connection.close()


@pytest.mark.parametrize("listen", ["127.0.0.1:\u00b2", "127.0.0.1:\u0668\u0660", "127.0.0.1:", "8080",
                                    "127.0.0.1:" + "9" * 5000, "127.0.0.1: 80", "127.0.0.1:8_0"])
def test_a_listen_port_is_ascii_digits(db, listen):
    """'²' passes str.isdigit() and then int() refuses it: the port is checked as ASCII digits."""
    assert verifier("init", *CHEAP_INIT).returncode == 0
    served = verifier("serve", "--listen", listen)
    assert served.returncode != 0 and "--listen must be HOST:PORT" in served.stderr
    assert "Traceback" not in served.stderr and "unexpected" not in served.stderr


@pytest.mark.parametrize("option, value", [
    ("--argon2", "\u0661\u0669\u0664\u0665\u0666/2/1"), ("--argon2", "19_456/2/1"), ("--argon2", "9" * 5000 + "/2/1"),
    ("--in-flight", "1_0/2"), ("--in-flight", " 8/2"), ("--key-rate", "nan/5"), ("--key-rate", "1e2/5"),
    ("--address-rate", "9" * 400), ("--address-rate", "\u0661\u0660/20"), ("--delay-base", "nan"),
    ("--max-failures", "\u0665"),
])
def test_init_numbers_are_ascii_digits(db, option, value):
    """int() read '١٩٤٥٦' and '19_456' as 19456, 400 nines made an infinite rate (OverflowError), and 5000
    digits are more than int() reads: refused in one line, nothing created."""
    refused = verifier("init", *CHEAP_INIT, option, value)
    assert refused.returncode == 2 and f"Invalid value for '{option}'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and "unexpected" not in refused.stderr
    assert verifier("status").returncode != 0  # no database was made
