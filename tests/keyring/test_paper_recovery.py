"""Paper recovery for every backend: profile deleted, the device and the sheet's fingerprint (and,
for a FIDO2 key without room for a discoverable credential, the credential id printed on the sheet)
bring the set back. Clients are the real ones (yubikit, python-fido2) talking to the emulated token."""

from __future__ import annotations

import json
import os
import subprocess


from _support import console_script, run_cli
from sealtoken.fido.const import CTAP2_MAX_RESIDENT

PIN = "paper-pin-1"


def _profile_path():
    return os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")


def _generate(label, *args, pin=True):
    result = run_cli("generate", label, "--device", "emulator", "--json", *args, input=f"{PIN}\n" if pin else None)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _recover(label, codes, *args, pin=True):
    return run_cli("recover", label, "--fingerprint", codes["fingerprint"], "--device", "emulator", "--json",
                   *args, input=f"{PIN}\n" if pin else "")


def test_applet_every_slot():
    for slot in ("1", "3"):
        assert run_cli("enroll", "--device", "emulator", "--slot", slot, input=PIN + "\n").returncode == 0
    profile = json.load(open(_profile_path()))
    slot3 = next(k for k in profile["enrollments"] if k.endswith(":3"))
    codes = _generate("site", "--device", slot3)
    os.unlink(_profile_path())
    result = _recover("site", codes, "--backend", "applet")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == codes


def test_ykoath_by_its_credential_name():
    assert run_cli("enroll", "--device", "emulator", "--backend", "ykoath").returncode == 0
    codes = _generate("site", "--backend", "ykoath", pin=False)
    os.unlink(_profile_path())
    result = _recover("site", codes, "--backend", "ykoath", pin=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == codes
    # without --backend too: the search goes through every application of the device
    result = _recover("site", codes, pin=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == codes


def test_yubiotp_slot_2_then_1():
    # slot 1 holds the set; slot 2 holds another secret, asked first and rejected by the fingerprint
    assert run_cli("enroll", "--device", "emulator", "--backend", "yubiotp", "--slot", "1", "--force").returncode == 0
    codes = _generate("site", "--backend", "yubiotp", pin=False)
    assert run_cli("enroll", "--device", "emulator", "--backend", "yubiotp", "--slot", "2", "--force").returncode == 0
    other = _generate("other", "--device", next(k for k in json.load(open(_profile_path()))["enrollments"]
                                               if k.startswith("yubiotp") and k.endswith(":2")), pin=False)
    os.unlink(_profile_path())
    result = _recover("site", codes, "--backend", "yubiotp", pin=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == codes
    result = _recover("other", other, "--backend", "yubiotp", pin=False)
    assert json.loads(result.stdout) == other


def _fill_resident_store():
    """Take every discoverable-credential slot of the emulated key (another site's credentials), so
    that sealcodes can only make a non-discoverable one, as on keys with little room."""
    from fido2.ctap2 import Ctap2

    from sealboard.ctaphid_link import open_emulated_hid_device
    from sealboard.emulator import EmulatedToken
    with EmulatedToken() as emulated:
        device = open_emulated_hid_device(emulated.token)
        try:
            ctap = Ctap2(device)
            for i in range(CTAP2_MAX_RESIDENT):
                ctap.make_credential(b"\x01" * 32, {"id": "example.org", "name": "example.org"},
                                     {"id": i.to_bytes(2, "big"), "name": f"user{i}"},
                                     [{"type": "public-key", "alg": -7}], options={"rk": True})
        finally:
            device.close()


def test_fido2_non_discoverable_credential_from_the_sheet(tmp_path):
    _fill_resident_store()
    enrolled = run_cli("enroll", "--device", "emulator", "--backend", "fido2")
    assert enrolled.returncode == 0 and "non-discoverable" in enrolled.stderr.replace("could not store a discoverable",
                                                                                        "non-discoverable")
    codes = _generate("site", "--backend", "fido2", pin=False)
    credential_id = next(iter(json.load(open(_profile_path()))["enrollments"].values()))["credential_id"]
    # the sheet carries the credential id as text and as a QR code
    sheet = subprocess.run([console_script("sealcodes"), "sheet", "site"], capture_output=True, text=True)
    assert sheet.returncode == 0, sheet.stderr
    assert f"--credential-id {credential_id}" in sheet.stdout
    pdf = subprocess.run([console_script("sealcodes"), "sheet", "site", "--pdf"], capture_output=True).stdout
    (tmp_path / "s.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(tmp_path / "s.pdf"), str(tmp_path / "p")], check=True)
    scanned = set()
    for image in tmp_path.glob("p*.png"):
        out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
                             capture_output=True, text=True).stdout
        scanned |= set(out.split())
    assert credential_id in scanned

    os.unlink(_profile_path())
    without = _recover("site", codes, "--backend", "fido2", pin=False)
    assert without.returncode == 1 and without.stdout == ""
    typed = _recover("site", codes, "--credential-id", credential_id, pin=False)
    assert typed.returncode == 0, typed.stderr
    assert json.loads(typed.stdout) == codes
    mistyped = _recover("site", codes, "--credential-id", credential_id[:-3] + "!!!", pin=False)
    assert mistyped.returncode == 1 and "credential id" in mistyped.stderr
