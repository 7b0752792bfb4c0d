"""docs/security.md item 7 for the verifier: `verifier verify` (accepted and rejected) and `import` write no
spelling of a code anywhere: not in any write syscall (strace), not in the database files."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from _support import console_script, run_cli
from _vsupport import CHEAP_INIT, code_set, record_for


def _spellings(code):
    compact = code.replace("-", "").replace(" ", "")
    return {code, compact, compact.lower()}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is installed by scripts/setup.sh --test")
def test_verify_writes_no_code(tmp_path):
    db_dir = tmp_path / "db"
    url = "sqlite:///" + str(db_dir / "verifier.db")
    env = dict(os.environ, SEALCODES_VERIFIER_DB=url, PYTHONDONTWRITEBYTECODE="1")
    assert run_cli("verifier", "init", *CHEAP_INIT, env=env).returncode == 0
    codes = code_set(count=3)
    wrong = code_set(label="other").codes[0]
    assert run_cli("verifier", "import", "-", input=record_for(codes).to_json(), env=env).returncode == 0
    trace = tmp_path / "trace.log"
    for typed, expected in ((codes.codes[0].lower(), 0), (codes.codes[0], 1), (wrong, 1)):
        result = subprocess.run(
            ["strace", "-f", "-qq", "-s", "65536", "-e", "trace=write,pwrite64,writev,pwritev", "-o", str(trace),
             console_script("sealcodes"), "verifier", "verify", "alice"],
            input=typed + "\n", capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == expected, result.stderr
        written = trace.read_text(errors="replace")
        assert "write" in written  # the trace did record the database writes
        for secret in _spellings(typed) | _spellings(codes.codes[0]):
            assert secret not in written
    files = [db_dir / name for name in os.listdir(db_dir)]
    assert any(name.name.endswith("-wal") for name in files) or len(files) >= 1
    for path in files:
        data = path.read_bytes()
        for code in list(codes.codes) + [wrong]:
            for secret in _spellings(code):
                assert secret.encode() not in data, f"a code reached {path.name}"
