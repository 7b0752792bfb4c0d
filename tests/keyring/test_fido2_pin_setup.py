"""enroll --backend fido2 --uv required on a key without a PIN offers to set one, asked twice,
honouring the key's minimum length (at a real pty; python-fido2 talks to the emulated key)."""

from __future__ import annotations

import json
import os

from _support import run_cli

from .test_confirm import PtyRun

PIN = "new-fido-pin"


def _enrollments():
    with open(os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")) as f:
        return json.load(f)["enrollments"]


def test_offer_to_set_a_pin_asked_twice():
    run = PtyRun("enroll", "--device", "emulator", "--backend", "fido2", "--uv", "required")
    run.expect(r"no FIDO2 PIN.*Set a PIN \(4 to 63 characters\) now\?")
    run.send("y")
    run.expect("New FIDO2 PIN")
    run.send(PIN)
    run.expect("Repeat for confirmation")
    run.send(PIN + "x")  # a mismatch stops with nothing set
    status, _ = run.finish()
    assert status == 1 and "differ" in run.screen and PIN not in run.screen
    assert not os.path.exists(os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json"))
    run = PtyRun("enroll", "--device", "emulator", "--backend", "fido2", "--uv", "required")
    run.expect(r"no FIDO2 PIN.*Set a PIN \(4 to 63 characters\) now\?")
    run.send("y")
    run.expect("New FIDO2 PIN")
    run.send(PIN)
    run.expect("Repeat for confirmation")
    run.send(PIN)
    status, out = run.finish()
    assert status == 0, run.screen
    assert b"Enrolled fido2" in out
    (meta,) = _enrollments().values()
    assert meta["uv"] is True
    # the PIN is now the key's: generate needs it, a wrong one is refused
    good = run_cli("generate", "site", "--json", input=PIN + "\n")
    assert good.returncode == 0, good.stderr
    bad = run_cli("generate", "site", "--json", input="wrong-pin\n")
    assert bad.returncode == 1 and bad.stdout == ""


def test_too_short_for_the_key_is_refused_and_nothing_set():
    run = PtyRun("enroll", "--device", "emulator", "--backend", "fido2", "--uv", "required")
    run.expect("Set a PIN")
    run.send("y")
    run.expect("New FIDO2 PIN")
    run.send("abc")
    run.expect("Repeat for confirmation")
    run.send("abc")
    status, _ = run.finish()
    assert status == 1 and "4 to 63 characters" in run.screen
    # declining leaves the key without a PIN, with the old clear error
    run = PtyRun("enroll", "--device", "emulator", "--backend", "fido2", "--uv", "required")
    run.expect("Set a PIN")
    run.send("n")
    status, _ = run.finish()
    assert status == 1 and "no FIDO2 PIN" in run.screen
    result = run_cli("enroll", "--device", "emulator", "--backend", "fido2", "--uv", "discouraged")
    assert result.returncode == 0, result.stderr  # still no PIN: touch-only works without one
