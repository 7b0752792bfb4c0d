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


def _profile_path():
    return os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")


def test_removal_through_pcscd_absent_members_and_an_old_export(two_tokens, tmp_path):
    """Removal re-seeds with real devices: token A's applet and token B's FIDO2 over pcscd + vpcd,
    and the emulator. An absent member stops it (nothing changes) until it is dropped explicitly;
    the export kept from before, with every old device back, derives none of the new codes; the
    old export still finds token A when its serial is spelled in hex."""
    a, b = two_tokens
    assert run_cli("enroll", "--device", a.reader, input=PIN_A + "\n").returncode == 0
    assert run_cli("enroll", "--device", b.reader, "--backend", "fido2").returncode == 0
    assert run_cli("enroll", "--device", "emulator", input=PIN_E + "\n").returncode == 0
    enrollments = _enrollments()
    applet_a = next(k for k, m in enrollments.items() if m["backend"] == "applet" and m.get("device_kind") != "emulator")
    fido_b = next(k for k, m in enrollments.items() if m["backend"] == "fido2")
    emulated = next(k for k, m in enrollments.items() if m.get("device_kind") == "emulator")
    created = run_cli("keyring", "create", "pair", "--device", applet_a, "--device", fido_b, "--device", emulated,
                      "--threshold", "2", input=f"{PIN_A}\n{PIN_E}\n")
    assert created.returncode == 0, created.stderr
    first = run_cli("generate", "mixed", "--keyring", "pair", "--json", input=f"{PIN_A}\n")
    assert first.returncode == 0, first.stderr
    old_codes = json.loads(first.stdout)
    old_export = run_cli("keyring", "export", "pair").stdout
    (tmp_path / "old.json").write_text(old_export)

    # token A is away: removing the emulator member would leave A without its new envelope
    a.stop(release=False)
    with open(_profile_path(), "rb") as f:
        before = f.read()
    refused = run_cli("keyring", "remove", "pair", "3", "--yes", input=f"{PIN_E}\n")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "not connected: member 1: applet on" in refused.stderr and "--drop-absent" in refused.stderr
    # dropping A too leaves one member: the threshold 2 no longer fits and must be given
    refused = run_cli("keyring", "remove", "pair", "3", "--yes", "--drop-absent", input=f"{PIN_E}\n")
    assert refused.returncode == 1 and "--threshold 1..1" in refused.stderr
    with open(_profile_path(), "rb") as f:
        assert f.read() == before
    # the FIDO2 key and the leaving emulator member open the old seed (2 of 3); A and the emulator leave
    removed = run_cli("keyring", "remove", "pair", "3", "--yes", "--drop-absent", "--threshold", "1", "--json",
                      input=f"{PIN_E}\n")
    assert removed.returncode == 0, removed.stderr
    new_codes = json.loads(removed.stdout)
    assert new_codes["epoch"] == 1 and set(new_codes["codes"]).isdisjoint(old_codes["codes"])
    assert "Removed member 1: applet" in removed.stderr and "Removed member 3: applet" in removed.stderr
    again = run_cli("generate", "mixed", "--json")  # token B alone, no PIN
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == new_codes

    # every old device back, with the export kept from before: the old seed, never the new codes
    a.start()
    attempt = run_cli("recover", "mixed", "--fingerprint", new_codes["fingerprint"], "--epoch", "1",
                      "--keyring-file", str(tmp_path / "old.json"), input=f"{PIN_A}\n{PIN_E}\n")
    assert attempt.returncode == 1 and attempt.stdout == "" and "another fingerprint" in attempt.stderr
    # the old export with token A's serial in the 8-hex-digit spelling of older profiles still finds it
    document = json.loads(old_export)
    member_a = next(m for m in document["members"] if m["member"] == 1)
    member_a["device"]["serial"] = f"{int(member_a['device']['serial']):08X}"
    (tmp_path / "old-hex.json").write_text(json.dumps(document))
    b.stop(release=False)
    old = run_cli("recover", "mixed", "--fingerprint", old_codes["fingerprint"], "--keyring-file",
                  str(tmp_path / "old-hex.json"), "--json", input=f"{PIN_A}\n{PIN_E}\n")
    assert old.returncode == 0, old.stderr
    assert json.loads(old.stdout) == old_codes
