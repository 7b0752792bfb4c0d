"""The host side of device-bound rotation (docs/spec.md section 14): `generate --verifier-record`
prints record v2 (the set's commitment); `rotate --verifier-record` asks the device for both
epochs with one PIN and signs the new record with the rotation key of the set it replaces. On the
built-in emulator, through pcscd + vpcd, with a keyring, and FIDO2's two salts in one assertion."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from _support import run_cli
from sealcodes.verifier.record import VerifierRecord
from sealcodes.verifier.rotation import verify_proof

PIN = "rotation-pin-1"
LABEL = "github.com/alice"


def _record(result) -> VerifierRecord:
    assert result.returncode == 0, result.stderr
    return VerifierRecord.from_json(result.stdout)


def _profile_path():
    return os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")


def test_generate_then_rotate_records_carry_the_chain_on_the_emulator():
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    first = _record(run_cli("generate", LABEL, "--verifier-record", "--account", "alice", input=PIN + "\n"))
    assert first.version == 2 and first.commitment is not None and first.proof is None
    # the same set again gives the same commitment (it comes from the device, not from chance)
    again = _record(run_cli("generate", LABEL, "--verifier-record", "--account", "alice", input=PIN + "\n"))
    assert again.commitment == first.commitment and again.salt != first.salt
    # rotate: ONE PIN line on stdin is enough for both epochs
    rotated_run = run_cli("rotate", LABEL, "--verifier-record", "--account", "alice", input=PIN + "\n")
    rotated = _record(rotated_run)
    assert "proof that this device made it" in rotated_run.stderr
    assert (rotated.epoch, rotated.proof.label, rotated.proof.epoch) == (1, LABEL, 0)
    assert verify_proof(first.commitment, rotated)
    assert not verify_proof(rotated.commitment, rotated)
    # the next rotation is proven by epoch 1's key, not epoch 0's
    third = _record(run_cli("rotate", LABEL, "--verifier-record", "--account", "alice", input=PIN + "\n"))
    assert verify_proof(rotated.commitment, third) and not verify_proof(first.commitment, third)
    codes = json.loads(run_cli("generate", LABEL, "--json", input=PIN + "\n").stdout)
    assert codes["epoch"] == 2 and codes["fingerprint"] == third.fingerprint
    printed = json.dumps(third.to_dict())
    assert all(code not in printed for code in codes["codes"])


def test_fido2_rotation_on_the_emulator():
    """A FIDO2 credential (no PIN: touch only) proves its own rotation too."""
    assert run_cli("enroll", "--device", "emulator", "--backend", "fido2").returncode == 0
    first = _record(run_cli("generate", LABEL, "--verifier-record"))
    rotated = _record(run_cli("rotate", LABEL, "--verifier-record"))
    assert verify_proof(first.commitment, rotated) and rotated.proof.epoch == 0


def test_rotation_refuses_when_the_device_no_longer_gives_the_current_set(isolated_dirs):
    """The old set's R must give the fingerprint the profile recorded: a proof made with another
    secret would be refused by the verifier anyway; the profile stays at the old epoch."""
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    assert run_cli("generate", LABEL, "--verifier-record", input=PIN + "\n").returncode == 0
    with open(_profile_path()) as f:
        profile = json.load(f)
    profile["sets"][LABEL]["fingerprint"] = "0000-0000"
    with open(_profile_path(), "w") as f:
        json.dump(profile, f)
    before = open(_profile_path()).read()
    result = run_cli("rotate", LABEL, "--verifier-record", input=PIN + "\n")
    assert result.returncode == 1 and "different secret" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert open(_profile_path()).read() == before


def test_keyring_set_rotation_is_proven_with_the_seed():
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    with open(_profile_path()) as f:
        one, two = sorted(k for k in json.load(f)["enrollments"] if k.startswith("applet:"))
    created = run_cli("keyring", "create", "home", "--device", one, "--device", two, input=f"{PIN}\n" * 2)
    assert created.returncode == 0, created.stderr
    first = _record(run_cli("generate", "site", "--keyring", "home", "--verifier-record", input=f"{PIN}\n"))
    rotated = _record(run_cli("rotate", "site", "--verifier-record", input=f"{PIN}\n"))
    assert verify_proof(first.commitment, rotated)


def test_moving_a_set_onto_a_keyring_is_proven_by_its_old_device():
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    with open(_profile_path()) as f:
        one, two = sorted(k for k in json.load(f)["enrollments"] if k.startswith("applet:"))
    first = _record(run_cli("generate", "site", "--device", one, "--verifier-record", input=f"{PIN}\n"))
    assert run_cli("keyring", "create", "home", "--device", one, "--device", two,
                   input=f"{PIN}\n" * 2).returncode == 0
    moved = _record(run_cli("rotate", "site", "--keyring", "home", "--verifier-record", input=f"{PIN}\n" * 2))
    assert verify_proof(first.commitment, moved)
    # and from then on the keyring's seed proves the next rotation
    assert verify_proof(moved.commitment, _record(run_cli("rotate", "site", "--verifier-record",
                                                          input=f"{PIN}\n")))


@pytest.mark.pcsc
def test_rotation_through_pcscd_and_vpcd(vpcd_token):
    assert run_cli("enroll", "--device", vpcd_token.reader, input=PIN + "\n").returncode == 0
    first = _record(run_cli("generate", LABEL, "--verifier-record", input=PIN + "\n"))
    rotated = _record(run_cli("rotate", LABEL, "--verifier-record", input=PIN + "\n"))
    assert verify_proof(first.commitment, rotated)
    vpcd_token.restart()
    third = _record(run_cli("rotate", LABEL, "--verifier-record", input=PIN + "\n"))
    assert verify_proof(rotated.commitment, third)


# --- FIDO2: both epochs from one assertion (hmac-secret salt1 and salt2) ----------------------------


@pytest.mark.parametrize("transport", ["hid", "nfc"])
def test_fido2_answers_two_challenges_in_one_assertion(transport):
    from fido2 import cbor

    from fido.test_fido_backend import Board, Recorder

    board = Board(transport=transport)
    try:
        board.set_pin()
        enrollment = board.backend().enroll(Recorder("4711-sealcodes"))
        first, second = (hashlib.sha256(t).digest() for t in (b"epoch 1", b"epoch 0"))
        expected = [board.backend().respond(c, enrollment, Recorder("4711-sealcodes")) for c in (first, second)]
        authenticator = board.token.fido.authenticator
        process, salted = authenticator.process, []

        def counting(request, *args, **kwargs):
            if request[0] == 0x02:  # getAssertion: count those that carry the hmac-secret extension
                salted.append(4 in cbor.decode(bytes(request[1:])))
            return process(request, *args, **kwargs)

        authenticator.process = counting
        user = Recorder("4711-sealcodes")
        both = board.backend().respond_many((first, second), enrollment, user)
        assert both == expected and all(len(r) == 32 for r in both)
        assert salted.count(True) == 1, salted  # one assertion with user presence, both salts in it
        assert user.pin_requests <= 1
    finally:
        board.close()
