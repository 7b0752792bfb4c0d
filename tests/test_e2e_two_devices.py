"""Several devices at once through pcscd + vpcd: a profile remembers which device each set belongs
to, generate finds it by serial, says clearly when it is absent, and never tries a PIN elsewhere."""

from __future__ import annotations

import json

import pytest

from _support import VpcdToken, run_cli
from sealcodes.backends.applet import AppletBackend
from sealcodes.pcsc import PcscConnection

pytestmark = pytest.mark.pcsc

PIN_A, PIN_B = "pin-of-token-a", "pin-of-token-b"


@pytest.fixture
def two_tokens(pcscd, tmp_path):
    a, b = VpcdToken(tmp_path / "a", slot=0), VpcdToken(tmp_path / "b", slot=1)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        try:
            a.stop()
        finally:
            b.stop()


def _info(reader):
    with PcscConnection(reader) as conn:
        return AppletBackend(conn).info()


def test_profile_follows_its_device(two_tokens):
    a, b = two_tokens
    serial_a, serial_b = _info(a.reader)["serial"], _info(b.reader)["serial"]
    assert serial_a != serial_b
    listing = run_cli("devices").stdout
    assert f"serial {serial_a}" in listing and f"serial {serial_b}" in listing

    # with two devices present, one must be named
    result = run_cli("enroll", input=PIN_A + "\n")
    assert result.returncode == 1 and "several devices" in result.stderr
    assert run_cli("enroll", "--device", a.reader, input=PIN_A + "\n").returncode == 0
    assert run_cli("enroll", "--device", serial_b, input=PIN_B + "\n").returncode == 0

    first_a = run_cli("generate", "site-a", "--device", serial_a, "--json", input=PIN_A + "\n")
    first_b = run_cli("generate", "site-b", "--device", b.reader, "--json", input=PIN_B + "\n")
    assert first_a.returncode == 0 and first_b.returncode == 0, first_a.stderr + first_b.stderr
    # later runs need no --device: the profile knows the serial
    assert run_cli("generate", "site-a", "--json", input=PIN_A + "\n").stdout == first_a.stdout
    assert run_cli("generate", "site-b", "--json", input=PIN_B + "\n").stdout == first_b.stdout
    assert json.loads(first_a.stdout)["codes"] != json.loads(first_b.stdout)["codes"]

    # token A leaves; B stays. A's set is refused before any PIN is tried anywhere
    a.stop(release=False)
    result = run_cli("generate", "site-a", input=PIN_A + "\n")
    assert result.returncode == 1
    assert "not connected" in result.stderr and serial_a in result.stderr
    # naming the wrong device explicitly is refused on identity, before the PIN
    result = run_cli("generate", "site-a", "--device", b.reader, input=PIN_A + "\n")
    assert result.returncode == 1 and serial_a in result.stderr and serial_b in result.stderr
    assert _info(b.reader)["pin_tries"] == 8  # no try spent on B
    a.start()
    assert run_cli("generate", "site-a", "--json", input=PIN_A + "\n").stdout == first_a.stdout
