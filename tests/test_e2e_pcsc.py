"""End to end through the real PC/SC stack: installed `sealcodes` -> pyscard -> pcscd -> vpcd
-> `sealtoken serve` -> firmware applet. Nothing mocked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from _support import console_script, run_cli

pytestmark = pytest.mark.pcsc

PIN = "4711-pin"
LABEL = "github.com/alice"


def _codes(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _enroll(token):
    result = run_cli("enroll", "--device", token.reader, input=PIN + "\n")
    assert result.returncode == 0, result.stderr
    assert "Enrolled applet:" in result.stdout
    return result


def test_enroll_generate_restart_generate_same_codes(vpcd_token, isolated_dirs):
    _enroll(vpcd_token)
    first = _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
    assert len(first["codes"]) == 10 and first["epoch"] == 0 and first["format"] == "base32-16"

    vpcd_token.restart()  # card out, card in: same flash
    again = _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
    assert again == first

    # the profile holds the fingerprint and metadata, never a code
    profile_path = isolated_dirs / "config" / "sealcodes" / "profile.json"
    assert oct(profile_path.stat().st_mode & 0o777) == "0o600"
    profile = json.loads(profile_path.read_text())
    assert profile["sets"][LABEL]["fingerprint"] == first["fingerprint"]
    text = profile_path.read_text()
    for code in first["codes"]:
        assert code not in text and code.replace("-", "") not in text
    assert PIN not in text


def test_same_state_in_process_gives_same_codes(vpcd_token, tmp_path):
    _enroll(vpcd_token)
    over_pcsc = _codes(run_cli("generate", LABEL, "--json", "--format", "base32-24", "--count", "4",
                               input=PIN + "\n"))
    vpcd_token.stop()
    # the same flash files, now through the in-process loopback (no pcscd), found by fingerprint
    result = run_cli("recover", LABEL, "--fingerprint", over_pcsc["fingerprint"], "--format", "base32-24",
                     "--count", "4", "--json", "--device", "emulator", input=PIN + "\n",
                     env={"SEALCODES_EMULATOR_DIR": str(vpcd_token.state_dir)})
    assert _codes(result) == over_pcsc


def test_wrong_pin_counts_down_and_locks(vpcd_token):
    _enroll(vpcd_token)
    good = _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
    for left in range(7, -1, -1):
        result = run_cli("generate", LABEL, input="wrong-pin\n")
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1, result.stderr  # one clear line
        if left:
            assert f"wrong PIN: {left} tr" in result.stderr
        else:
            assert "blocked" in result.stderr
        assert "wrong-pin" not in result.stderr + result.stdout
    result = run_cli("generate", LABEL, input=PIN + "\n")
    assert result.returncode == 1 and "blocked" in result.stderr
    assert good["codes"][0] not in result.stdout
    # blocked survives a power cycle
    vpcd_token.restart()
    result = run_cli("generate", LABEL, input=PIN + "\n")
    assert result.returncode == 1 and "blocked" in result.stderr


def test_card_removed_mid_command(vpcd_token, isolated_dirs):
    _enroll(vpcd_token)
    _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
    profile_path = isolated_dirs / "config" / "sealcodes" / "profile.json"
    before = profile_path.read_bytes()
    # the CLI has selected the applet and waits for the PIN on stdin; the card goes away
    proc = subprocess.Popen([console_script("sealcodes"), "rotate", LABEL], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    vpcd_token.process.send_signal(signal.SIGKILL)
    vpcd_token.process.wait()
    vpcd_token.process = None
    time.sleep(0.5)
    out, err = proc.communicate(PIN + "\n", timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err and err.startswith("Error: ")
    assert "removed" in err or "reset" in err
    assert out == ""
    assert profile_path.read_bytes() == before  # rotate did not half-happen


def test_other_slot_secret_is_refused_by_fingerprint(vpcd_token):
    _enroll(vpcd_token)
    _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
    # replace slot 1's secret behind the profile's back: a new enrollment over it
    result = run_cli("--profile", os.devnull + ".unused", "enroll", "--device", vpcd_token.reader, "--force",
                     input=PIN + "\n")
    assert result.returncode == 0, result.stderr
    result = run_cli("generate", LABEL, input=PIN + "\n")
    assert result.returncode == 1
    assert "different secret" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("backend", ["ykoath", "yubiotp"])
def test_yubikey_backends_find_their_device_by_serial(vpcd_token, backend):
    """ykoath/yubiotp record the serial the YubiKey way (decimal, from the OTP/management app):
    later runs find the device by asking the backend, with no --device."""
    result = run_cli("enroll", "--device", vpcd_token.reader, "--backend", backend, "--force")
    assert result.returncode == 0, result.stderr
    first = _codes(run_cli("generate", "yk.example", "--json"))
    vpcd_token.restart()
    assert _codes(run_cli("generate", "yk.example", "--json")) == first


def test_recover_reports_a_wrong_pin(vpcd_token):
    _enroll(vpcd_token)
    first = _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
    result = run_cli("recover", LABEL, "--fingerprint", first["fingerprint"], "--device", vpcd_token.reader,
                     input="not-the-pin\n")
    assert result.returncode == 1 and "wrong PIN" in result.stderr and result.stdout == ""
