"""Keyrings with mixed members through real pcscd + vpcd: our token's applet on one vpcd slot,
FIDO2 (python-fido2 over PC/SC) on another, and the built-in emulator. Members come and go."""

from __future__ import annotations

import json
import os

import pytest

from _support import run_cli

pytestmark = pytest.mark.pcsc

PIN_A, PIN_E = "pin-of-token-a", "pin-of-emulator"


def _enrollments():
    with open(os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")) as f:
        return json.load(f)["enrollments"]


def test_mixed_members_absent_members_and_threshold(two_tokens, tmp_path):
    a, b = two_tokens
    assert run_cli("enroll", "--device", a.reader, input=PIN_A + "\n").returncode == 0
    fido = run_cli("enroll", "--device", b.reader, "--backend", "fido2")
    assert fido.returncode == 0, fido.stderr
    assert run_cli("enroll", "--device", "emulator", input=PIN_E + "\n").returncode == 0
    enrollments = _enrollments()
    applet_a = next(k for k, m in enrollments.items() if m["backend"] == "applet" and m.get("device_kind") != "emulator")
    fido_b = next(k for k, m in enrollments.items() if m["backend"] == "fido2")
    emulated = next(k for k, m in enrollments.items() if m.get("device_kind") == "emulator")

    # any one of three, and two of three
    for name, threshold in (("any", 1), ("pair", 2)):
        created = run_cli("keyring", "create", name, "--device", applet_a, "--device", fido_b, "--device", emulated,
                          "--threshold", str(threshold), input=f"{PIN_A}\n{PIN_E}\n")
        assert created.returncode == 0, created.stderr
    first_any = run_cli("generate", "mixed-any", "--keyring", "any", "--json", input=f"{PIN_A}\n")
    first_pair = run_cli("generate", "mixed-pair", "--keyring", "pair", "--json", input=f"{PIN_A}\n")
    assert first_any.returncode == 0 and first_pair.returncode == 0, first_any.stderr + first_pair.stderr
    exported = tmp_path / "pair.json"
    exported.write_text(run_cli("keyring", "export", "pair").stdout)

    # token A leaves: the next present member answers, same codes
    a.stop(release=False)
    result = run_cli("generate", "mixed-any", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == first_any.stdout and "not connected, skipped" in result.stderr
    result = run_cli("generate", "mixed-pair", "--json", input=f"{PIN_E}\n")
    assert result.stdout == first_pair.stdout, result.stderr

    # the FIDO2 key leaves too: one of three still opens "any", but "pair" needs two: refused
    b.stop(release=False)
    result = run_cli("generate", "mixed-any", "--json", input=f"{PIN_E}\n")
    assert result.stdout == first_any.stdout, result.stderr
    refused = run_cli("generate", "mixed-pair", "--json", input=f"{PIN_E}\n")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "needs 2 of its members; 1 answered" in refused.stderr and "not connected" in refused.stderr

    # no profile, paper only: both tokens back, emulator state kept; the export opens with A + FIDO2
    a.start()
    b.start()
    os.unlink(os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json"))
    fingerprint = json.loads(first_pair.stdout)["fingerprint"]
    recovered = run_cli("recover", "mixed-pair", "--fingerprint", fingerprint, "--keyring-file", str(exported),
                        "--json", input=f"{PIN_A}\n")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout) == json.loads(first_pair.stdout)
