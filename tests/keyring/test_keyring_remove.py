"""`keyring remove` re-seeds (docs/backup.md, "Removing a member"), on the built-in emulator: a new
seed and keyring id, new envelopes for the members left, every set rotated; an export kept from
before the removal, with the removed device (or with every old device), derives none of the new
codes; a refusal or an interruption half-way leaves the profile as it was, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from sealcodes import derivation
from sealcodes import keyring as kr
from sealcodes.backends.base import Interaction
from sealcodes.formats import parse_code
from sealcodes.keyring_operations import open_seed
from sealcodes.memory import wipe
from sealcodes.verifier.record import PreviousSet, VerifierRecord, code_digest, make_record
from sealcodes.verifier.rotation import verify_proof
from _support import run_cli

from .test_confirm import PtyRun

PIN = "remove-pin-1"


def _profile_path():
    return os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")


def _profile_bytes():
    with open(_profile_path(), "rb") as f:
        return f.read()


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def members():
    """Enrollment ids: applet slot 1, applet slot 2 (PIN), FIDO2 (no PIN), all on the emulator."""
    _ok(run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n"))
    _ok(run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n"))
    _ok(run_cli("enroll", "--device", "emulator", "--backend", "fido2"))
    ids = json.loads(_profile_bytes())["enrollments"]
    applets = sorted(k for k in ids if k.startswith("applet:"))
    return applets[0], applets[1], next(k for k in ids if k.startswith("fido2:"))


def _create(name, devices, threshold=1):
    args = [a for device in devices for a in ("--device", device)]
    _ok(run_cli("keyring", "create", name, *args, "--threshold", str(threshold), input=f"{PIN}\n" * 3))


def _generate(label, *extra):
    return json.loads(_ok(run_cli("generate", label, "--json", *extra, input=f"{PIN}\n" * 3)).stdout)


def _recover(codes, keyring_file, stdin=""):
    return run_cli("recover", codes["label"], "--fingerprint", codes["fingerprint"], "--epoch", str(codes["epoch"]),
                   "--format", codes["format"], "--keyring-file", keyring_file, "--json",
                   input=stdin + f"{PIN}\n" * 3)


def test_old_export_and_removed_device_derive_none_of_the_new_codes(members, tmp_path):
    one, two, fido = members
    _create("home", [one, two, fido])
    old_codes = _generate("site", "--keyring", "home")
    old_json = run_cli("keyring", "export", "home").stdout
    old_paper = run_cli("keyring", "export", "home", "--text").stdout.strip()
    (tmp_path / "old.json").write_text(old_json)
    # the attacker's view: the old export cut down to the removed member (slot 2) alone
    alone = json.loads(old_json)
    alone["members"] = [m for m in alone["members"] if m["member"] == 2]
    (tmp_path / "alone.json").write_text(json.dumps(alone))

    removed = _ok(run_cli("keyring", "remove", "home", two, "--yes", "--json", input=f"{PIN}\n" * 3))
    new_codes = json.loads(removed.stdout)
    assert new_codes["epoch"] == 1 and set(new_codes["codes"]).isdisjoint(old_codes["codes"])
    assert "Removed member 2: applet" in removed.stderr and "re-seeds the keyring" in removed.stderr
    document = json.loads(run_cli("keyring", "export", "home").stdout)
    old_document = json.loads(old_json)
    assert document["id"] != old_document["id"]
    assert [m["member"] for m in document["members"]] == [1, 3] and document["retired_max"] == 3
    old_envelopes = {m["envelope"] for m in old_document["members"]}
    assert not old_envelopes & {m["envelope"] for m in document["members"]}
    assert json.loads(_profile_bytes())["sets"]["site"]["epoch"] == 1

    # the removed device with the old export (JSON, cut down or whole, or the sheet's SCK1 text): no new codes
    for keyring_file, stdin in ((str(tmp_path / "alone.json"), ""), (str(tmp_path / "old.json"), ""),
                                ("-", old_paper.lower() + "\n\n")):
        refused = _recover(new_codes, keyring_file, stdin)
        assert refused.returncode == 1 and refused.stdout == "", refused.stderr
        assert "another fingerprint" in refused.stderr
    # what removal cannot undo, and the docs say so: the old epoch's codes stay derivable by it
    assert json.loads(_ok(_recover(old_codes, str(tmp_path / "alone.json"))).stdout) == old_codes

    # the members left derive the new codes: from the profile, and from a new export with no profile
    assert _generate("site") == new_codes
    (tmp_path / "new.json").write_text(run_cli("keyring", "export", "home").stdout)
    new_paper = run_cli("keyring", "export", "home", "--text").stdout.strip()
    os.unlink(_profile_path())
    assert json.loads(_ok(_recover(new_codes, str(tmp_path / "new.json"))).stdout) == new_codes
    assert json.loads(_ok(_recover(new_codes, "-", new_paper + "\n\n")).stdout) == new_codes


def test_threshold_must_still_fit(members):
    one, two, _ = members
    _create("pair", [one, two], threshold=2)
    _generate("site", "--keyring", "pair")
    before = _profile_bytes()
    refused = run_cli("keyring", "remove", "pair", "2", "--yes")
    assert refused.returncode == 1 and "fewer than its threshold 2: give the new one with --threshold 1..1" in \
        refused.stderr
    assert run_cli("keyring", "remove", "pair", "2", "--yes", "--threshold", "2").returncode != 0
    assert _profile_bytes() == before
    # with --threshold 1: the member leaving opens the old seed with member 1 (2 of 2), then leaves
    lowered = _ok(run_cli("keyring", "remove", "pair", "2", "--yes", "--threshold", "1", "--json",
                          input=f"{PIN}\n" * 3))
    assert "any 1 of 1 members" in lowered.stderr
    assert _generate("site") == json.loads(lowered.stdout)


def test_no_rotate_is_refused_and_nothing_changes(members):
    one, two, _ = members
    _create("home", [one, two])
    _generate("site", "--keyring", "home")
    before = _profile_bytes()
    result = run_cli("keyring", "remove", "home", "2", "--yes", "--no-rotate")
    assert result.returncode == 1 and "always rotated" in result.stderr
    result = run_cli("keyring", "remove", "home", "2", "--yes", "--account", "site", "alice")
    assert result.returncode == 1 and "goes with --verifier-record" in result.stderr
    unconfirmed = run_cli("keyring", "remove", "home", "2")  # not a terminal, no --yes
    assert unconfirmed.returncode == 1 and "not removed" in unconfirmed.stderr
    assert _profile_bytes() == before


def test_verifier_records_one_line_per_rotated_set(members):
    """Record v2 for each rotated set: the commitment of the new seed's set, and the proof signed
    with the rotation key of the set it replaces (made from the old seed)."""
    one, two, fido = members
    _create("home", [one, two, fido])
    _generate("a.example", "--keyring", "home", "--format", "base32-24")
    _generate("b.example", "--keyring", "home", "--format", "base32-24", "--count", "3")
    old = {label: VerifierRecord.from_json(_ok(run_cli("generate", label, "--verifier-record",
                                                       input=f"{PIN}\n" * 3)).stdout)
           for label in ("a.example", "b.example")}
    removed = _ok(run_cli("keyring", "remove", "home", "1", "--yes", "--verifier-record", input=f"{PIN}\n" * 3))
    lines = removed.stdout.splitlines()
    assert len(lines) == 2 and "Keyring home" in removed.stderr
    sets = json.loads(_profile_bytes())["sets"]
    for line, label in zip(lines, ("a.example", "b.example")):
        record = VerifierRecord.from_json(line)
        assert record.label == label and record.epoch == 1 == sets[label]["epoch"]
        assert record.fingerprint == sets[label]["fingerprint"]
        assert (record.proof.label, record.proof.epoch) == (label, 0)
        assert verify_proof(old[label].commitment, record) and record.commitment != old[label].commitment
        codes = _generate(label)["codes"]
        assert all(code not in removed.stdout for code in codes)
        for code, digest in zip(codes, record.digests):  # the record checks the new codes
            assert code_digest(record.hash, record.salt, record.format, parse_code(code, record.format)) == digest
    # the chain goes on from the new seed: the next rotation is proven by the removal's commitment
    nxt = VerifierRecord.from_json(_ok(run_cli("rotate", "a.example", "--verifier-record", input=f"{PIN}\n")).stdout)
    assert verify_proof(VerifierRecord.from_json(lines[0]).commitment, nxt)


class _Pins(Interaction):
    def request_pin(self, purpose, new=False):
        return bytearray(PIN.encode())


def test_a_verifier_takes_the_removal_and_the_removed_member_signs_nothing_it_accepts(members, tmp_path):
    """A real verifier store (SQLite): the removal's record replaces the set, the new codes log in,
    the old ones do not. The removed member, with the old export, still opens the old seed and can
    sign a rotation with the OLD set's key; the verifier, which holds the removal's commitment by
    then, refuses it (docs/spec.md section 14.4: only the active set's key may replace it)."""
    one, two, fido = members
    _create("home", [one, two, fido])
    _generate("site", "--keyring", "home")
    db = ["verifier", "--db", f"sqlite:///{tmp_path / 'verifier.db'}"]
    _ok(run_cli(*db, "init"))
    first = _ok(run_cli("generate", "site", "--verifier-record", "--account", "alice", input=f"{PIN}\n" * 3))
    _ok(run_cli(*db, "import", "-", input=first.stdout))
    first_record = VerifierRecord.from_json(first.stdout)
    alone = json.loads(run_cli("keyring", "export", "home").stdout)
    alone["members"] = [m for m in alone["members"] if m["member"] == 2]

    refused = run_cli("keyring", "remove", "home", "2", "--yes", "--verifier-record", "--account", "nosuch", "x")
    assert refused.returncode == 1 and "not a set of keyring" in refused.stderr
    # this verifier knows the set as "alice": its record is made for that account (and for the label)
    removed = _ok(run_cli("keyring", "remove", "home", "2", "--yes", "--verifier-record", "--account", "site",
                          "alice", "--account", "site", "site", input=f"{PIN}\n" * 3))
    record, as_label = (VerifierRecord.from_json(line) for line in removed.stdout.splitlines())
    assert (record.account, as_label.account) == ("alice", "site") and record.commitment == as_label.commitment
    # later, the profile still keeps the old document: a proof "from epoch 0" is signed with S again
    # (opened by the members that stay), for the same new set
    late = VerifierRecord.from_json(_ok(run_cli("generate", "site", "--verifier-record", "--account", "alice",
                                                "--proof-from-epoch", "0", input=f"{PIN}\n" * 3)).stdout)
    assert verify_proof(first_record.commitment, late) and late.commitment == record.commitment
    assert (late.label, late.epoch, late.fingerprint) == (record.label, record.epoch, record.fingerprint)
    _ok(run_cli(*db, "import", "-", input=record.to_json()))
    new_codes = _generate("site")["codes"]
    assert run_cli(*db, "verify", "alice", input=new_codes[0] + "\n").returncode == 0
    status = _ok(run_cli(*db, "status", "alice")).stdout
    assert "site  epoch 1" in status and "epoch 0" not in status  # the old codes are gone with their set

    # the removed member with its old envelope: the old seed, a rotation of its own signed with it
    seed = open_seed(kr.from_json(json.dumps(alone)), _Pins())
    try:
        forged_codes = derivation.derive(seed, "site", 2, "base32-16", 10)
        forged = make_record(forged_codes, account="alice", response=seed, previous=PreviousSet(seed, "site", 0))
    finally:
        wipe(seed)
    assert not verify_proof(record.commitment, forged)
    assert verify_proof(first_record.commitment, forged)  # why the removal's records must go out at once
    refused = run_cli(*db, "import", "-", input=forged.to_json())
    assert refused.returncode != 0 and "proof" in refused.stderr and "Traceback" not in refused.stderr
    attempt = run_cli(*db, "verify", "alice", input=forged_codes.codes[0] + "\n")
    assert attempt.returncode == 1 and "too early" not in attempt.stderr


def _pty_removal(*extra):
    """`keyring remove home 2` at a terminal: confirmed with y, then the codes of each set shown."""
    run = PtyRun("keyring", "remove", "home", "2", "--json", *extra)
    run.expect(r"Remove member 2 from keyring home\? It re-seeds the keyring, and rotates a\.example, b\.example")
    run.send("y")
    return run


def _interrupt(run):
    """Ctrl-C on the terminal, again until the process ends: a SIGINT that lands between the prompt
    and the read() under input() is only acted on at the next one (CPython's line reader)."""
    for _ in range(150):
        os.write(run.master, b"\x03")
        try:
            run.process.wait(timeout=0.2)
            return
        except subprocess.TimeoutExpired:
            continue
    raise AssertionError("Ctrl-C did not end the command")


def test_type_back_refused_or_ctrl_c_changes_nothing(members):
    one, two, fido = members
    _create("home", [fido, one])  # member 1 answers with no PIN: nothing to type but the codes
    first = {label: _generate(label, "--keyring", "home") for label in ("a.example", "b.example")}
    before = _profile_bytes()

    # the first set confirmed, the second refused: neither set nor the keyring changes
    run = _pty_removal()
    codes = run.codes()
    assert codes["label"] == "a.example" and codes["epoch"] == 1
    number = int(run.expect(r"Type code #(\d+) from").group(1))
    run.send(codes["codes"][number - 1])
    run.expect("Confirmed")
    second = run.codes()
    assert second["label"] == "b.example"
    run.expect(r"Type code #\d+")
    run.send("")
    run.expect("nothing changed")
    status, _ = run.finish()
    assert status == 1 and _profile_bytes() == before

    # Ctrl-C at the question
    run = _pty_removal()
    run.codes()
    run.expect(r"Type code #\d+")
    _interrupt(run)
    status, _ = run.finish()
    assert status != 0 and "Traceback" not in run.screen
    assert _profile_bytes() == before
    assert {label: _generate(label) for label in first} == first  # the old codes are still the current ones

    # both confirmed: now it happens
    run = _pty_removal()
    for _ in range(2):
        codes = run.codes()
        number = int(run.expect(r"Type code #(\d+) from").group(1))
        run.send(codes["codes"][number - 1])
        run.expect("Confirmed")
    status, rest = run.finish()
    assert status == 0 and rest == b""  # codes shown once, at the question
    assert {json.loads(_profile_bytes())["sets"][label]["epoch"] for label in first} == {1}


def test_dropping_absent_members_is_asked_for_by_name(members):
    """A member whose device is not found (here: its recorded serial names no device) stops the removal;
    --drop-absent names it and asks; no leaves everything as it was, yes removes both."""
    one, two, fido = members
    _create("home", [fido, one, two])
    _generate("site", "--keyring", "home")
    data = json.loads(_profile_bytes())
    data["keyrings"]["home"]["members"][2]["device"]["serial"] = "99999999"
    with open(_profile_path(), "w") as f:
        json.dump(data, f)
    before = _profile_bytes()
    refused = run_cli("keyring", "remove", "home", "2", "--yes", input=f"{PIN}\n")
    assert refused.returncode == 1 and "not connected: member 3: applet on 99999999" in refused.stderr
    for answer in ("n", "y"):
        run = PtyRun("keyring", "remove", "home", "2", "--drop-absent", "--json", "--no-confirm")
        run.expect(r"Remove member 2 from keyring home\?")
        run.send("y")
        run.expect(r"Also remove from keyring home the members not connected: member 3: applet on 99999999")
        run.send(answer)
        if answer == "n":
            run.expect("nothing changed")
            assert run.finish()[0] == 1 and _profile_bytes() == before
    codes = run.codes()
    assert run.finish()[0] == 0 and codes["epoch"] == 1
    assert [m["member"] for m in json.loads(_profile_bytes())["keyrings"]["home"]["members"]] == [1]
    assert _generate("site") == codes


def test_fewer_than_k_members_connected_is_refused_naming_how_many(members):
    """Issue 18: with fewer than k members present, removal is refused and the message names how
    many are needed. It is the first refusal (before "every member left must be connected", before
    --drop-absent asks, before any PIN), also when every member that stays is connected and the
    missing ones are leaving."""
    one, two, fido = members
    _create("home", [fido, one, two], threshold=2)
    _generate("site", "--keyring", "home")
    data = json.loads(_profile_bytes())
    serial = data["keyrings"]["home"]["members"][1]["device"]["serial"]
    for member in data["keyrings"]["home"]["members"][1:]:  # members 2 and 3: their serial names no device
        member["device"]["serial"] = "99999999"
    with open(_profile_path(), "w") as f:
        json.dump(data, f)
    before = _profile_bytes()
    needs = "Error: keyring 'home' needs 2 of its members to open; 1 answered (not connected: "
    for args in (["3"], ["3", "--drop-absent"], ["2", "3", "--threshold", "1"]):
        refused = run_cli("keyring", "remove", "home", *args, "--yes", input=f"{PIN}\n" * 3)
        assert refused.returncode == 1 and refused.stdout == "", args
        error = [line for line in refused.stderr.splitlines() if not line.startswith("Warning: ")]
        assert len(error) == 1 and error[0].startswith(needs), (args, refused.stderr)
        assert "member 2: applet on 99999999 (1); member 3: applet on 99999999 (2)" in error[0]
        assert error[0].endswith("nothing changed; connect 1 more of them")
        assert "PIN" not in refused.stderr and _profile_bytes() == before
    # member 2 back: 2 of 3 answer, so now the member that stays and is missing stops the removal
    data["keyrings"]["home"]["members"][1]["device"]["serial"] = serial
    with open(_profile_path(), "w") as f:
        json.dump(data, f)
    refused = run_cli("keyring", "remove", "home", "2", "--yes", input=f"{PIN}\n" * 3)
    assert refused.returncode == 1 and "needs 2 of its members" not in refused.stderr
    assert "must be connected (not connected: member 3: applet on 99999999 (2))" in refused.stderr
