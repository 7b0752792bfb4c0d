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
    assert "proof that the current set's device or keyring made it" in rotated_run.stderr
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
        assert enrollment.uv and user.pin_requests == 1  # user verification, one PIN for both
    finally:
        board.close()


# --- the profile never runs ahead of the verifier --------------------------------------------------


def test_a_record_that_cannot_be_written_leaves_the_profile_at_the_old_epoch():
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    assert run_cli("generate", LABEL, "--verifier-record", input=PIN + "\n").returncode == 0
    before = open(_profile_path()).read()
    with open("/dev/full", "w") as full:
        import subprocess

        from _support import console_script

        result = subprocess.run([console_script("sealcodes"), "rotate", LABEL, "--verifier-record"],
                                input=PIN + "\n", stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1 and "could not write the verifier record" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert open(_profile_path()).read() == before


def test_a_verifier_left_behind_gets_a_record_proven_by_its_epoch():
    """Rotations whose records never reached the verifier: the current set's record can be proven
    with the rotation key of the epoch the verifier still holds (the device regenerates any epoch)."""
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    held = _record(run_cli("generate", LABEL, "--verifier-record", input=PIN + "\n"))
    for _ in range(2):
        assert run_cli("rotate", LABEL, "--no-confirm", "--json", input=PIN + "\n").returncode == 0
    caught_up = _record(run_cli("generate", LABEL, "--verifier-record", "--proof-from-epoch", "0",
                                input=PIN + "\n"))
    assert caught_up.epoch == 2 and (caught_up.proof.label, caught_up.proof.epoch) == (LABEL, 0)
    assert verify_proof(held.commitment, caught_up)
    for bad in (["--proof-from-epoch", "2"], ["--proof-from-epoch", "5"]):
        refused = run_cli("generate", LABEL, "--verifier-record", *bad, input=PIN + "\n")
        assert refused.returncode != 0 and "older epoch" in refused.stderr and refused.stdout == ""
    alone = run_cli("generate", LABEL, "--proof-from-epoch", "0", input=PIN + "\n")
    assert alone.returncode == 1 and "goes with --verifier-record" in alone.stderr


def test_one_set_several_accounts_one_signed_record_each():
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    firsts = run_cli("generate", LABEL, "--verifier-record", "--account", "alice", "--account", "alice-admin",
                     input=PIN + "\n")
    assert firsts.returncode == 0, firsts.stderr
    first = [VerifierRecord.from_json(line) for line in firsts.stdout.splitlines()]
    assert [r.account for r in first] == ["alice", "alice-admin"] and first[0].commitment == first[1].commitment
    rotated = run_cli("rotate", LABEL, "--verifier-record", "--account", "alice", "--account", "alice-admin",
                      input=PIN + "\n")
    records = [VerifierRecord.from_json(line) for line in rotated.stdout.splitlines()]
    assert [r.account for r in records] == ["alice", "alice-admin"]
    assert all(verify_proof(first[0].commitment, r) for r in records)
    # each proof binds its own account: swapping them breaks both
    import dataclasses

    assert not verify_proof(first[0].commitment, dataclasses.replace(records[0], proof=records[1].proof))


def test_every_answer_is_wiped_when_the_second_one_fails():
    """A device that answers the first challenge and fails (or is interrupted) on the second: the
    first answer is overwritten before the error leaves respond_many."""
    from sealcodes.backends.base import Backend
    from sealcodes.errors import DeviceError

    given = []

    class HalfBackend(Backend):
        name = "half"

        def enroll(self, interaction, options):
            raise NotImplementedError

        def respond(self, challenge, enrollment, interaction):
            if given:
                raise DeviceError("the card was removed")
            given.append(bytearray(b"\x42" * 32))
            return given[-1]

    with pytest.raises(DeviceError):
        HalfBackend().respond_many((b"\x01" * 32, b"\x02" * 32), None, None)
    assert given and given[0] == bytearray(32)


@pytest.mark.pcsc
def test_batch_records_carry_the_commitment_of_each_set(vpcd_token, tmp_path):
    from sealcodes.backends.applet import AppletBackend
    from sealcodes.pcsc import PcscConnection

    with PcscConnection(vpcd_token.reader) as conn:
        serial = AppletBackend(conn).info()["serial"]
    csv_path, out = tmp_path / "fleet.csv", tmp_path / "records.jsonl"
    csv_path.write_text(f"account,label,serial,format,count,pin\nalice,corp/alice,{serial},base32-16,3,{PIN}\n")
    result = run_cli("batch", "enroll", "--csv", str(csv_path), "--output", str(out), "--no-wait", timeout=180)
    assert result.returncode == 0, result.stderr
    (record,) = [VerifierRecord.from_json(line) for line in out.read_text().splitlines()]
    assert record.version == 2 and record.proof is None
    # the commitment is the set's own: the next rotation by that token is proven under it
    rotated = _record(run_cli("rotate", "corp/alice", "--verifier-record", "--account", "alice", input=PIN + "\n"))
    assert verify_proof(record.commitment, rotated)


def test_no_proof_from_an_epoch_another_device_made():
    """Moving a set onto a keyring changes its secret: the profile remembers from which epoch the
    present keyring makes it, and a proof from an older epoch is refused rather than signed with a
    key no verifier holds. Rotations within one source keep that epoch."""
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    with open(_profile_path()) as f:
        one, two = sorted(k for k in json.load(f)["enrollments"] if k.startswith("applet:"))
    assert run_cli("generate", "site", "--device", one, "--json", input=PIN + "\n").returncode == 0
    assert run_cli("rotate", "site", "--json", input=PIN + "\n").returncode == 0
    with open(_profile_path()) as f:
        assert json.load(f)["sets"]["site"]["since"] == 0  # the same device made epochs 0 and 1
    assert run_cli("keyring", "create", "home", "--device", one, "--device", two,
                   input=f"{PIN}\n" * 2).returncode == 0
    assert run_cli("rotate", "site", "--keyring", "home", "--json", input=f"{PIN}\n" * 2).returncode == 0
    assert run_cli("rotate", "site", "--json", input=f"{PIN}\n").returncode == 0
    with open(_profile_path()) as f:
        assert json.load(f)["sets"]["site"]["since"] == 2
    refused = run_cli("generate", "site", "--verifier-record", "--proof-from-epoch", "1", input=f"{PIN}\n")
    assert refused.returncode == 1 and refused.stdout == "" and "moved at epoch 2" in refused.stderr
    fine = _record(run_cli("generate", "site", "--verifier-record", "--proof-from-epoch", "2", input=f"{PIN}\n"))
    assert (fine.epoch, fine.proof.epoch) == (3, 2)
