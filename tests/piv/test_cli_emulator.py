"""The `piv` and `openpgp` backends through the installed CLI on the built-in emulator (no pcscd)."""

from __future__ import annotations

import json

import pytest

from _support import run_cli

PINS = {"piv": ("123456", "123456"), "openpgp": ("12345678", "123456")}  # (enrollment, use)


@pytest.mark.parametrize("backend", ["piv", "openpgp"])
def test_enroll_generate_rotate_and_debug_log_holds_no_secret(isolated_dirs, backend):
    enroll_pin, use_pin = PINS[backend]
    enrolled = run_cli("--debug", "enroll", "--device", "emulator", "--backend", backend, "--force",
                       input=enroll_pin + "\n")
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"Enrolled {backend}:" in enrolled.stdout
    first = run_cli("--debug", "generate", "debug.example", "--json", input=use_pin + "\n")
    assert first.returncode == 0, first.stderr
    codes = json.loads(first.stdout)["codes"]
    for secret in codes + [c.replace("-", "") for c in codes] + [use_pin, use_pin.encode().hex(),
                                                                  enroll_pin, enroll_pin.encode().hex()]:
        assert secret not in first.stderr and secret not in enrolled.stderr
    again = run_cli("generate", "debug.example", "--json", input=use_pin + "\n")
    assert json.loads(again.stdout)["codes"] == codes
    rotated = run_cli("rotate", "debug.example", "--json", input=use_pin + "\n")
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["epoch"] == 1 and json.loads(rotated.stdout)["codes"] != codes


def test_empty_pin_and_blocked_pin_are_one_line_errors(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", "--backend", "piv", "--force").returncode == 0
    empty = run_cli("generate", "x", input="")
    assert empty.returncode != 0 and "stdin is empty" in empty.stderr and "Traceback" not in empty.stderr
    for left in (2, 1):
        wrong = run_cli("generate", "x", input="999999\n")
        assert f"wrong PIV PIN ({left} tries left)" in wrong.stderr
    blocked = run_cli("generate", "x", input="999999\n")
    assert blocked.returncode != 0 and "blocked" in blocked.stderr and "Traceback" not in blocked.stderr
    assert len(blocked.stderr.strip().splitlines()) == 1


def test_too_long_piv_pin_is_refused_clearly(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", "--backend", "piv", "--force").returncode == 0
    result = run_cli("generate", "x", input="123456789\n")
    assert result.returncode != 0 and "at most 8 characters" in result.stderr
