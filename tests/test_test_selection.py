"""Test selection tells the truth: every test that needs pcscd is marked `pcsc`, so
`pytest -m "not pcsc"` runs on a machine without pcscd, neither erroring nor hanging, and
leaves no `sealtoken serve` behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from _support import ROOT

pytest_plugins = ["pytester"]

TESTS = ROOT / "tests"


def _sealtoken_processes(under) -> set:
    """`sealtoken serve` processes whose state directory is under `under` (other programs on this
    machine may run their own)."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"sealtoken") for part in cmd[:2]) and b"serve" in cmd \
                    and any(str(under).encode() in part for part in cmd):
                found.add(int(pid))
    return found


def test_not_pcsc_runs_without_pcscd(tmp_path):
    """With pcscd unreachable (its socket moved away), the PC/SC tests are deselected, the rest
    (the yubikit backends over the in-process loopback among them) pass."""
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.sock"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not pcsc and not slow",
         "--basetemp", str(tmp_path / "inner"),
         str(TESTS / "yubikey" / "test_backends.py"), str(TESTS / "test_e2e_pcsc.py"),
         str(TESTS / "test_e2e_two_devices.py"), str(TESTS / "test_pcsc_transaction.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in summary and "deselected" in summary and "error" not in summary, summary
    assert not _sealtoken_processes(tmp_path / "inner")  # nothing started, nothing left running


def test_a_test_using_pcscd_without_the_marker_is_refused(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    pcsc: needs pcscd\n")
    pytester.makepyfile(test_unmarked="def test_x(vpcd_token):\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret != 0
    assert "without the pcsc marker: test_unmarked.py::test_x" in result.stderr.str() + result.stdout.str()


def test_the_yubikit_vpcd_variants_carry_the_marker():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "pcsc",
         str(TESTS / "yubikey")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    selected = [line for line in result.stdout.splitlines() if "::" in line]
    assert selected and all("[vpcd" in line for line in selected), selected[:5]


def test_fixtures_stop_what_they_start_when_the_card_never_appears(tmp_path, monkeypatch):
    """A `sealtoken serve` that cannot reach vpcd: start() fails with a clear error, and the
    process it started is gone (it would otherwise retry for ever)."""
    from _support import VpcdToken

    token = VpcdToken(tmp_path / "state")
    token.port = 9  # discard: nothing listens, the card can never appear
    token.connect_timeout = 1  # it gives up after this long (10 s by default)
    token.reader = "No Such Reader 00 00"
    monkeypatch.setattr(VpcdToken, "_LOCK_PATH", str(tmp_path / "lock"))
    with pytest.raises(RuntimeError, match="exited|did not appear"):
        token.start()
    assert token.process is None
    assert not _sealtoken_processes(tmp_path)
