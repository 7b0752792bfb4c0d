"""`sealcodes batch enroll --csv` end to end with two `sealtoken serve` tokens on vpcd (real pcscd),
then `verifier import` of its output and a code of each person accepted."""

from __future__ import annotations

import json

import pytest

from _support import run_cli
from _vsupport import UNLIMITED_INIT
from sealcodes.backends.applet import AppletBackend
from sealcodes.batch import read_rows
from sealcodes.errors import InvalidInputError
from sealcodes.pcsc import PcscConnection


def _serial(reader):
    with PcscConnection(reader) as conn:
        return AppletBackend(conn).info()["serial"]


@pytest.mark.pcsc
def test_batch_enroll_two_tokens_resumable(two_tokens, tmp_path):
    a, b = two_tokens
    serial_a, serial_b = _serial(a.reader), _serial(b.reader)
    csv_path, out = tmp_path / "fleet.csv", tmp_path / "records.jsonl"
    csv_path.write_text(
        "account,label,serial,format,count,pin\n"
        f"alice,corp/alice,{serial_a},base32-16,5,pin-alice-1\n"
        "carol,corp/carol,DEADBEEF00,,,pin-carol-1\n"
        f"bob,corp/bob,{serial_b},digits-24,3,pin-bob-1\n")
    first = run_cli("batch", "enroll", "--csv", str(csv_path), "--output", str(out), "--no-wait", timeout=180)
    assert first.returncode == 1, first.stderr  # carol's device is absent
    assert "[2/3] carol  corp/carol: FAILED (line 3)" in first.stderr
    assert "2 enrolled, 0 already done, 1 failed" in first.stderr
    assert "pin-alice-1" not in first.stdout + first.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["account"], r["label"], r["format"], r["count"]) for r in records] == [
        ("alice", "corp/alice", "base32-16", 5), ("bob", "corp/bob", "digits-24", 3)]
    assert "pin-" not in out.read_text()

    # rerun: done rows are skipped, the failed one fails again, nothing is written twice
    again = run_cli("batch", "enroll", "--csv", str(csv_path), "--output", str(out), "--no-wait", timeout=180)
    assert "0 enrolled, 2 already done, 1 failed" in again.stderr
    assert len(out.read_text().splitlines()) == 2

    # the records work in the verifier; each person's codes come from their own token
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    assert run_cli("verifier", "init", *UNLIMITED_INIT, env=env).returncode == 0
    assert run_cli("verifier", "import", str(out), env=env).stdout.count("imported") == 2
    codes_b = json.loads(run_cli("generate", "corp/bob", "--json", input="pin-bob-1\n").stdout)["codes"]
    codes_a = json.loads(run_cli("generate", "corp/alice", "--json", input="pin-alice-1\n").stdout)["codes"]
    assert run_cli("verifier", "verify", "bob", input=codes_b[0] + "\n", env=env).returncode == 0
    assert run_cli("verifier", "verify", "alice", input=codes_a[4] + "\n", env=env).returncode == 0
    assert run_cli("verifier", "verify", "alice", input=codes_b[1] + "\n", env=env).returncode == 1


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("user,label\nalice,x\n", "header"),
    ("account,label\n", "no rows"),
    ("account,label\nalice\n", "line 2: 1 fields"),
    ("account,label,count\nalice,x,1000\n", "line 2: count"),
    ("account,label,count\nalice,x,\u0661\u0662\n", "line 2: count"),
    ("account,label,count\nalice,x,1_0\n", "line 2: count"),
    ("account,label,format\nalice,x,base64\n", "line 2: unknown format"),
    ("account,label\nalice,x\nalice,x\n", "line 3: this account and label appear twice"),
    ("account,label,serial\nalice,x,../../etc\n", "line 2: the serial"),
    ("account,label,serial\nalice,x,\u0663\u0660\u0662\u0666\n", "line 2: the serial"),  # isalnum() took it
    ("account,label,pin\nalice,x,123\n", "line 2: an initial PIN"),
    ("account,label\nal\u0007ice,x\n", "line 2: account contains a control character"),
])
def test_bad_csv_is_refused_before_any_device(text, message):
    with pytest.raises(InvalidInputError, match=message):
        read_rows(text)


def test_bad_csv_from_the_cli_is_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("account,label\nalice\n")
    result = run_cli("batch", "enroll", "--csv", str(path), "--output", str(tmp_path / "o.jsonl"))
    assert result.returncode == 1 and result.stderr.strip() == "Error: line 2: 1 fields, the header has 2"
    assert not (tmp_path / "o.jsonl").exists()
