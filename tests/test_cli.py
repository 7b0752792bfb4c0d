"""The `sealcodes` CLI: exit codes, stdout/stderr, one-line errors, on the built-in emulator."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sealcodes._cli import cli
from _support import run_cli

SPEC_R = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
SPEC_CODES = ["PDNV-H2W6-DE8S-0C1K", "WF4W-TNVD-DJMR-WD2N", "XZMZ-RBD7-N5CF-4M4H", "9G1Y-W802-C1X4-MV7F",
              "T20S-VVC1-5GXK-VNEP", "505E-66J2-E8VF-ZH0Z", "XE5M-2PBJ-V8SB-3HSQ", "WCDH-3GVE-E8YR-4EZX",
              "H542-ZPS0-P05M-XTAH", "EV6H-1HRT-BJ34-XE34"]
PIN = "correct horse"


def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.mark.parametrize("command", [[], ["expand"], ["check"], ["devices"], ["enroll"], ["generate"],
                                     ["rotate"], ["recover"], ["demo"]])
def test_help_needs_no_device(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_expand_spec_vector():
    result = invoke("expand", "--label", "github.com/alice", input=SPEC_R + "\n")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Recovery codes for github.com/alice  (epoch 0, base32-16)"
    assert [line.split(". ")[1] for line in lines[1:11]] == SPEC_CODES
    assert lines[1].strip().startswith("1. ") and lines[10].strip().startswith("10. ")
    assert lines[-1] == "Fingerprint: 47JR-PGW1"


def test_expand_json_digits():
    result = invoke("expand", "--label", "bank", "--epoch", "4294967295", "--format", "digits-24", "--count", "3",
                    "--json", input="00" * 20)
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "label": "bank", "epoch": 4294967295, "format": "digits-24", "fingerprint": "JZNN-1DJC",
        "codes": ["8904 0340 3688 9378 9031 7319", "0808 7887 2832 5864 0949 3998", "2136 2010 5789 6017 7321 5104"],
    }


@pytest.mark.parametrize("stdin, message", [
    ("zz" * 32, "not hex"),
    ("00" * 15, "16"),
    ("00" * 65, "64"),
    ("", "16"),
])
def test_expand_rejects_bad_response_in_one_line(stdin, message):
    result = run_cli("expand", "--label", "x", input=stdin)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    if stdin:
        assert stdin not in result.stderr


@pytest.mark.parametrize("label", ["", " lead", "trail ", "ctl\x07char", "x" * 129])
def test_expand_rejects_bad_labels(label):
    result = run_cli("expand", "--label", label, input=SPEC_R)
    assert result.returncode == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_check_codes():
    assert run_cli("check", "pdnv h2w6 de8s 0c1k").returncode == 0
    assert run_cli("check", "PDNV-H2W6-DE8S-OC1K").returncode == 0  # O read as 0
    typo = run_cli("check", "PDNV-H2W6-DE8S-0C1J")
    assert typo.returncode == 1 and "mistyped" in typo.stderr
    swap = run_cli("check", "PDNV-H2W6-DE8S-C01K")
    assert swap.returncode == 1
    bad = run_cli("check", "PDNV-H2W6-DE8S-0C1U")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "PDNV" not in bad.stderr
    assert run_cli("check", "8904 0340 3688 9378 9031 7319").returncode == 0
    assert run_cli("check", "8904 0340 3688 9378 9031 7391").returncode == 1
    assert run_cli("check", "MA3A-CFQT-YNAN-NJN9-7282-102N", "--format", "base32-24").returncode == 0


def test_demo_runs_without_hardware():
    result = run_cli("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "SOFTWARE" in result.stdout and "same codes: yes" in result.stdout


def test_emulator_enroll_generate_rotate(isolated_dirs):
    result = run_cli("enroll", "--device", "emulator", input=PIN + "\n")
    assert result.returncode == 0, result.stderr
    assert "SOFTWARE" in result.stderr
    first = json.loads(run_cli("generate", "example.org/bob", "--json", input=PIN + "\n").stdout)
    again = run_cli("generate", "example.org/bob", input=PIN + "\n")
    assert again.returncode == 0 and first["codes"][0] in again.stdout and "SOFTWARE token" in again.stdout
    rotated = json.loads(run_cli("rotate", "example.org/bob", "--json", input=PIN + "\n").stdout)
    assert rotated["epoch"] == 1 and set(rotated["codes"]).isdisjoint(first["codes"])
    # a generate at an epoch other than the recorded one is refused with a pointer to recover
    old = run_cli("generate", "example.org/bob", "--epoch", "0", input=PIN + "\n")
    assert old.returncode == 1 and "recover" in old.stderr
    recovered = run_cli("recover", "example.org/bob", "--fingerprint", first["fingerprint"].lower(), "--json",
                        "--device", "emulator", input=PIN + "\n")
    assert json.loads(recovered.stdout)["codes"] == first["codes"]
    wrong = run_cli("recover", "example.org/bob", "--fingerprint", "0000-0000", "--device", "emulator",
                    input=PIN + "\n")
    assert wrong.returncode == 1 and wrong.stdout == "" and "fingerprint" in wrong.stderr


def test_generate_without_enrollment_is_one_line(isolated_dirs):
    result = run_cli("generate", "x", "--device", "emulator")
    assert result.returncode == 1 and result.stderr == "Error: no device enrolled yet: run `sealcodes enroll` first\n"


@pytest.mark.parametrize("content", [b"{not json", b'{"schema": "sealcodes-profile/99", "enrollments": {}, "sets": {}}',
                                     b'{"hello": 1}', b"\xff\xfe", b'{"schema": "sealcodes-profile/1", "sets": []}'])
def test_corrupt_profile_reported_and_untouched(tmp_path, content):
    path = tmp_path / "profile.json"
    path.write_bytes(content)
    result = run_cli("--profile", str(path), "enroll", "--device", "emulator", input=PIN + "\n")
    assert result.returncode == 1
    assert "left untouched" in result.stderr and result.stderr.count("\n") == 1
    assert path.read_bytes() == content


def test_pin_from_stdin_is_never_echoed(isolated_dirs):
    result = run_cli("enroll", "--device", "emulator", input=PIN + "\n")
    assert PIN not in result.stdout + result.stderr
    result = run_cli("--debug", "generate", "l", input=PIN + "\n")
    assert result.returncode == 0
    assert PIN not in result.stdout + result.stderr
    assert PIN.encode().hex() not in result.stderr


@pytest.mark.parametrize("backend", ["applet", "fido2", "ykoath", "yubiotp"])
def test_debug_log_holds_no_secret(isolated_dirs, backend):
    """docs/security.md item 10: even at --debug, no code or PIN reaches stderr, whichever backend."""
    force = [] if backend == "fido2" else ["--force"]  # fido2 overwrites nothing: it has no --force
    enrolled = run_cli("--debug", "enroll", "--device", "emulator", "--backend", backend, *force,
                       input=PIN + "\n")
    assert enrolled.returncode == 0, enrolled.stderr
    result = run_cli("--debug", "generate", "debug.example", "--json", input=PIN + "\n")
    assert result.returncode == 0, result.stderr
    codes = json.loads(result.stdout)["codes"]
    for secret in codes + [c.replace("-", "") for c in codes] + [PIN, PIN.encode().hex()]:
        assert secret not in result.stderr and secret not in enrolled.stderr


def test_two_enrollments_on_one_device_are_chosen_by_backend(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--backend", "fido2").returncode == 0
    ambiguous = run_cli("generate", "new.example", "--device", "emulator", input=PIN + "\n")
    assert ambiguous.returncode == 1 and "--backend" in ambiguous.stderr
    chosen = run_cli("generate", "new.example", "--device", "emulator", "--backend", "fido2", "--json")
    assert chosen.returncode == 0, chosen.stderr
    profile = json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())
    assert profile["enrollments"][profile["sets"]["new.example"]["enrollment"]]["backend"] == "fido2"
    # the set remembers its backend: no --backend needed any more, and no PIN asked (fido2 without UV)
    again = run_cli("generate", "new.example", "--json")
    assert again.returncode == 0 and again.stdout == chosen.stdout


def test_check_reads_the_code_from_stdin():
    assert run_cli("check", input="PDNV-H2W6-DE8S-0C1K\n").returncode == 0
    assert run_cli("check", "-", input="PDNV-H2W6-DE8S-0C1J\n").returncode == 1


def test_enrollment_named_by_id_for_two_slots(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    ambiguous = run_cli("generate", "s.example", "--device", "emulator", input=PIN + "\n")
    assert ambiguous.returncode == 1 and "--device ENROLLMENT" in ambiguous.stderr
    ident = ambiguous.stderr.rstrip().split(": ")[-1].split(", ")[1]
    assert ident.endswith(":2")
    chosen = run_cli("generate", "s.example", "--device", ident, "--json", input=PIN + "\n")
    assert chosen.returncode == 0, chosen.stderr
    profile = json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())
    assert profile["sets"]["s.example"]["enrollment"] == ident


@pytest.mark.parametrize("backend, option, takes", [
    ("applet", ["--touch"], "--slot, --force"),
    ("applet", ["--uv", "required"], "--slot, --force"),
    ("fido2", ["--slot", "2"], "--uv, --force"),
    ("fido2", ["--touch"], "--uv, --force"),
    ("ykoath", ["--slot", "1"], "--touch, --force"),
    ("ykoath", ["--adopt"], "--touch, --force"),
    ("yubiotp", ["--uv", "discouraged"], "--slot, --touch, --adopt, --force"),
])
def test_an_option_a_backend_does_not_use_is_refused_the_same_way(isolated_dirs, backend, option, takes):
    """Every backend refuses an enrollment option it would ignore, with one message shape, before the
    device is touched and before any PIN is asked."""
    result = run_cli("enroll", "--device", "emulator", "--backend", backend, *option, input=PIN + "\n")
    assert result.returncode == 1
    name = option[0]
    assert result.stderr == f"Error: the {backend} backend does not use {name} (it takes: {takes})\n"
    assert not (isolated_dirs / "config" / "sealcodes" / "profile.json").exists()
    assert not (isolated_dirs / "data" / "sealcodes" / "emulator").exists()  # the token was never opened


def test_reenrolling_names_the_sets_it_orphans(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    for label in ("b.example", "a.example"):
        assert run_cli("generate", label, input=PIN + "\n").returncode == 0
    again = run_cli("enroll", "--device", "emulator", "--force", input=PIN + "\n")
    assert again.returncode == 0, again.stderr
    assert "2 set(s): a.example, b.example" in again.stderr and "rotate" in again.stderr
    # the guard names what applies to this backend (a token slot), not a FIDO2 PIN
    stale = run_cli("generate", "a.example", input=PIN + "\n")
    assert stale.returncode == 1 and "different secret" in stale.stderr
    assert "slot" in stale.stderr and "FIDO2" not in stale.stderr
    # a second slot is a new enrollment: nothing orphaned
    other = run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n")
    assert other.returncode == 0 and "Note:" not in other.stderr.replace("Note: the built-in", "")


def test_recover_searches_every_slot_with_a_verify_before_each_derive(isolated_dirs):
    """The applet is PIN-always: recover VERIFYs before each slot's DERIVE, with the one PIN typed."""
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "3", input=PIN + "\n").returncode == 0
    ids = [i for i in json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())["enrollments"]]
    third = next(i for i in ids if i.endswith(":3"))
    made = run_cli("generate", "slots.example", "--device", third, "--json", input=PIN + "\n")
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)
    # slot 1 is tried first (no match), then slot 3: one PIN line on stdin serves both
    found = run_cli("recover", "slots.example", "--fingerprint", first["fingerprint"], "--json",
                    "--device", "emulator", input=PIN + "\n")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["codes"] == first["codes"]
    # and the PIN counter is full again afterwards (each right VERIFY resets it)
    again = run_cli("generate", "slots.example", "--json", input=PIN + "\n")
    assert again.returncode == 0 and json.loads(again.stdout) == first
    # a wrong PIN costs one try per command, not one per slot searched
    for left in (7, 6):
        wrong = run_cli("recover", "slots.example", "--fingerprint", first["fingerprint"], "--device", "emulator",
                        input="wrong pin\n")
        assert wrong.returncode == 1 and f"wrong PIN: {left} tries left" in wrong.stderr, wrong.stderr
    assert run_cli("generate", "slots.example", "--json", input=PIN + "\n").returncode == 0
    wrong = run_cli("generate", "slots.example", input="wrong pin\n")
    assert "wrong PIN: 7 tries left" in wrong.stderr  # the right PIN put the counter back to 8


def test_check_stdin_is_capped():
    """A huge stdin is refused after a few hundred bytes, not read whole (as `expand` does)."""
    import subprocess
    from _support import console_script

    proc = subprocess.Popen([console_script("sealcodes"), "check"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"A" * (1 << 20))  # 1 MiB without a line end; the pipe blocks past ~64 KiB unread
        proc.stdin.close()
    except BrokenPipeError:  # sealcodes stopped reading early and exited
        pass
    proc.wait(timeout=30)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 1 and out == b""
    assert err.decode().startswith("Error: ") and err.count(b"\n") == 1 and b"longer than" in err
    assert b"AAAA" not in err


def test_pin_line_on_stdin_is_capped(isolated_dirs):
    result = run_cli("enroll", "--device", "emulator", input="1" * 5000 + "\n")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "longer than" in result.stderr
    assert "1111" not in result.stderr + result.stdout
    assert not (isolated_dirs / "config" / "sealcodes" / "profile.json").exists()
