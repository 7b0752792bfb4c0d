"""Keyring commands on the built-in emulator (three members on one emulated token: applet slots 1
and 2, FIDO2): create, generate --keyring, recover --keyring-file with no profile, tampered and
swapped envelopes, wrong device, add then remove the original members."""

from __future__ import annotations

import json
import os

import pytest

from sealcodes import keyring as kr
from _support import run_cli

PIN = "keyring-pin-1"


def _profile_path():
    return os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")


def _profile():
    with open(_profile_path()) as f:
        return json.load(f)


def _write_profile(data):
    with open(_profile_path(), "w") as f:
        json.dump(data, f)


@pytest.fixture
def members():
    """Enrollment ids: applet slot 1, applet slot 2, fido2 (no PIN) on the emulator."""
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--backend", "fido2").returncode == 0
    ids = _profile()["enrollments"]
    applets = sorted(k for k in ids if k.startswith("applet:"))
    fido = next(k for k in ids if k.startswith("fido2:"))
    return applets[0], applets[1], fido


def _create(name, devices, threshold=1, pins=2):
    args = ["keyring", "create", name]
    for device in devices:
        args += ["--device", device]
    result = run_cli(*args, "--threshold", str(threshold), input=f"{PIN}\n" * pins)
    assert result.returncode == 0, result.stderr
    return result


def _generate(label, *extra, pins=2):
    return run_cli("generate", label, "--json", *extra, input=f"{PIN}\n" * pins)


def test_create_generate_and_recover_without_profile(members, tmp_path):
    one, two, fido = members
    created = _create("home", [one, two, fido], threshold=2)
    assert "any 2 of 3 members" in created.stdout
    first = _generate("github.com/alice", "--keyring", "home")
    assert first.returncode == 0, first.stderr
    codes = json.loads(first.stdout)
    # later runs need no --keyring: the profile binds the set
    again = _generate("github.com/alice")
    assert json.loads(again.stdout) == codes
    # the profile keeps envelopes only: no seed, no share, no code
    text = open(_profile_path()).read()
    assert all(c not in text for c in codes["codes"])
    listing = run_cli("keyring", "show", "home").stdout
    assert "github.com/alice" in listing and "fido2" in listing

    exported = tmp_path / "home.json"
    exported.write_text(run_cli("keyring", "export", "home").stdout)
    paper = run_cli("keyring", "export", "home", "--text").stdout.strip()
    assert kr.to_json(kr.from_paper(paper)) == exported.read_text().strip()
    os.unlink(_profile_path())
    recovered = run_cli("recover", "github.com/alice", "--fingerprint", codes["fingerprint"], "--keyring-file",
                        str(exported), "--json", input=f"{PIN}\n{PIN}\n")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout) == codes
    # typed from the sheet: the SCK1 text on stdin (lower case, in groups), an empty line, then the PINs
    typed = " ".join(kr.paper_lines(paper)).lower() + "\n\n"
    recovered = run_cli("recover", "github.com/alice", "--fingerprint", codes["fingerprint"], "--keyring-file", "-",
                        "--json", input=typed + f"{PIN}\n{PIN}\n")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout)["codes"] == codes["codes"]
    wrong = run_cli("recover", "github.com/alice", "--fingerprint", "0000-0000", "--keyring-file", str(exported),
                    input=f"{PIN}\n{PIN}\n")
    assert wrong.returncode == 1 and wrong.stdout == "" and "another fingerprint" in wrong.stderr


def test_codes_of_a_keyring_follow_spec_v1_with_S_as_R(members):
    """Same label through two different keyrings gives different codes; a set's codes match the
    v1 derivation of the seed (checked through the independent implementation by the vectors)."""
    one, two, fido = members
    _create("a", [one, two])
    _create("b", [one, fido], pins=1)
    codes_a = json.loads(_generate("x.example", "--keyring", "a", pins=1).stdout)
    codes_b = json.loads(_generate("y.example", "--keyring", "b", pins=1).stdout)
    assert codes_a["codes"] != codes_b["codes"]


def _tamper(mutate):
    data = _profile()
    mutate(data["keyrings"]["home"])
    _write_profile(data)


def test_tampered_envelope_gives_a_clear_error_and_no_codes(members):
    one, two, fido = members
    _create("home", [one, two])
    assert _generate("site", "--keyring", "home", pins=1).returncode == 0

    def flip(doc):
        envelope = bytearray.fromhex(doc["members"][0]["envelope"])
        envelope[5] ^= 0x04
        doc["members"][0]["envelope"] = envelope.hex()

    _tamper(flip)
    result = _generate("site")
    assert result.returncode == 1 and result.stdout == ""
    assert "does not open" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: the envelope of member 1")


def test_swapped_member_and_wrong_device_refused(members, tmp_path):
    one, two, fido = members
    _create("home", [one, two])
    assert _generate("site", "--keyring", "home", pins=1).returncode == 0
    original = _profile()

    def swap(doc):
        a, b = doc["members"]
        a["envelope"], b["envelope"] = b["envelope"], a["envelope"]
        a["nonce"], b["nonce"] = b["nonce"], a["nonce"]

    _tamper(swap)
    result = _generate("site")
    assert result.returncode == 1 and result.stdout == "" and "does not open" in result.stderr

    _write_profile(original)

    def wrong_device(doc):  # member 1's envelope, but asked of slot 2's secret
        doc["members"][0]["device"]["slot"] = 2

    _tamper(wrong_device)
    result = _generate("site")
    assert result.returncode == 1 and result.stdout == "" and "not that device" in result.stderr


def test_add_a_member_then_remove_the_originals(members, tmp_path):
    one, two, fido = members
    _create("home", [one, two])
    codes = json.loads(_generate("site", "--keyring", "home", pins=1).stdout)
    before = json.loads(run_cli("keyring", "export", "home").stdout)
    added = run_cli("keyring", "add", "home", "--device", fido, input=f"{PIN}\n")
    assert added.returncode == 0, added.stderr
    assert "3. fido2" in added.stdout
    # adding keeps the seed: same id, the existing envelopes unchanged, the same codes
    after = json.loads(run_cli("keyring", "export", "home").stdout)
    assert after["id"] == before["id"] and after["members"][:2] == before["members"]
    assert json.loads(_generate("site", pins=1).stdout) == codes
    epoch = 0
    for member in ("1", "2"):
        removed = run_cli("keyring", "remove", "home", member, "--yes", "--json", input=f"{PIN}\n" * 2)
        assert removed.returncode == 0, removed.stderr
        epoch += 1
        rotated = json.loads(removed.stdout)
        assert rotated["epoch"] == epoch and set(rotated["codes"]).isdisjoint(codes["codes"])
        assert "re-seeds the keyring" in removed.stderr and "Rotated: site" in removed.stderr
        codes = rotated
    # only one member is left: removing it too would leave the keyring empty
    last = run_cli("keyring", "remove", "home", "3", "--yes")
    assert last.returncode == 1 and "no member" in last.stderr
    show = run_cli("keyring", "show", "home").stdout
    assert "applet" not in show and "3. fido2" in show
    # the FIDO2 member alone (no PIN) regenerates the rotated set, and from an export with no profile
    assert json.loads(_generate("site", pins=0).stdout) == codes
    exported = tmp_path / "k.json"
    exported.write_text(run_cli("keyring", "export", "home").stdout)
    os.unlink(_profile_path())
    recovered = run_cli("recover", "site", "--fingerprint", codes["fingerprint"], "--epoch", str(epoch),
                        "--keyring-file", str(exported), "--json")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout) == codes
    # a removed member's id is never reused; the keyring id changed with each removal
    document = json.loads(exported.read_text())
    assert [m["member"] for m in document["members"]] == [3] and document["retired_max"] == 3
    assert document["id"] not in (before["id"], after["id"])


def test_rotate_a_keyring_set(members):
    one, two, _ = members
    _create("home", [one, two])
    first = json.loads(_generate("site", "--keyring", "home", pins=1).stdout)
    rotated = run_cli("rotate", "site", "--json", input=f"{PIN}\n")
    assert rotated.returncode == 0, rotated.stderr
    second = json.loads(rotated.stdout)
    assert second["epoch"] == 1 and set(second["codes"]).isdisjoint(first["codes"])
    assert json.loads(_generate("site", pins=1).stdout) == second


@pytest.mark.parametrize("args, message", [
    (["keyring", "create", "solo", "--device", "D1"], "at least 2"),
    (["keyring", "create", "bad name", "--device", "a", "--device", "b"], "keyring name"),
    (["keyring", "create", "k", "--device", "a", "--device", "b", "--threshold", "3"], "threshold"),
    (["keyring", "show", "nosuch"], "no keyring"),
    (["keyring", "export", "nosuch"], "no keyring"),
    (["generate", "x", "--keyring", "nosuch"], "no keyring"),
])
def test_bad_keyring_commands_one_line(members, args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("content, message", [
    ("{}", "not a sealcodes keyring"),
    ("SCK1ABCD", "mistyped"),
    ("\x00\xff", "not"),
    ("x" * 300000, "too large"),
])
def test_bad_keyring_file_one_line(tmp_path, content, message):
    path = tmp_path / "bad"
    path.write_text(content, encoding="latin-1")
    result = run_cli("recover", "x", "--fingerprint", "0000-0000", "--keyring-file", str(path))
    assert result.returncode == 1 and message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_foreign_keyring_file_text_is_escaped_on_the_terminal(tmp_path, members):
    one, two, _ = members
    _create("home", [one, two])
    doc = json.loads(run_cli("keyring", "export", "home").stdout)
    for member in doc["members"]:
        member["device"]["serial"] = "NOPE\x1b[2J\u202e"  # absent, and hostile to a terminal
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(doc))
    result = run_cli("recover", "x", "--fingerprint", "0000-0000", "--keyring-file", str(path))
    assert result.returncode == 1 and "not connected" in result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr and "\\x1b" in result.stderr


def test_ykoath_and_yubiotp_members():
    """Every backend that answers a challenge can be a member: OATH (32-byte answer) and OTP (20)."""
    assert run_cli("enroll", "--device", "emulator", "--backend", "ykoath").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--backend", "yubiotp", "--force").returncode == 0
    ids = sorted(_profile()["enrollments"])
    _create("yk", ids, threshold=2, pins=0)
    first = _generate("site", "--keyring", "yk", pins=0)
    assert first.returncode == 0, first.stderr
    assert json.loads(_generate("site", pins=0).stdout) == json.loads(first.stdout)


def test_rotate_moves_a_device_set_onto_a_keyring_and_remove_rotates_it(members):
    one, two, fido = members
    plain = run_cli("generate", "site", "--device", one, "--json", input=f"{PIN}\n")
    assert plain.returncode == 0, plain.stderr
    _create("home", [two, fido], pins=1)
    moved = run_cli("rotate", "site", "--keyring", "home", "--json", input=f"{PIN}\n")
    assert moved.returncode == 0, moved.stderr
    assert _profile()["sets"]["site"] == dict(_profile()["sets"]["site"], enrollment="keyring:home", epoch=1)
    assert "site" in run_cli("keyring", "show", "home").stdout
    # removing a member rotates every set of the keyring at once (--rotate: accepted, as before)
    removed = run_cli("keyring", "remove", "home", "1", "--yes", "--rotate", input=f"{PIN}\n")
    assert removed.returncode == 0, removed.stderr
    assert _profile()["sets"]["site"]["epoch"] == 2
    assert "Recovery codes for site" in removed.stdout


def test_verifier_record_of_a_keyring_set(members):
    """A keyring set's codes and fingerprint are plain v1 ones: its verifier record names the same
    fingerprint as the set."""
    one, two, _ = members
    _create("home", [one, two])
    codes = json.loads(_generate("site", "--keyring", "home", pins=1).stdout)
    record = run_cli("generate", "site", "--verifier-record", input=f"{PIN}\n")
    assert record.returncode == 0, record.stderr
    assert codes["fingerprint"] in record.stdout
    assert all(code not in record.stdout for code in codes["codes"])


def test_piv_and_openpgp_members_keep_their_key_fingerprint(tmp_path):
    """A card key is checked by its fingerprint before its PIN is sent: the keyring document carries
    `key`, `curve` and `key_fingerprint`, so such a member answers again later, with or without a profile."""
    assert run_cli("enroll", "--device", "emulator", "--backend", "piv", "--force", input="123456\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--backend", "openpgp", "--force",
                   input="12345678\n").returncode == 0
    ids = sorted(_profile()["enrollments"])
    created = run_cli("keyring", "create", "cards", "--device", ids[0], "--device", ids[1], input="123456\n" * 2)
    assert created.returncode == 0, created.stderr
    devices = [m["device"] for m in json.loads(run_cli("keyring", "export", "cards").stdout)["members"]]
    assert all(len(d["key_fingerprint"]) == 64 and d["curve"] and d["key"] for d in devices)
    first = run_cli("generate", "site", "--keyring", "cards", "--json", input="123456\n")
    assert first.returncode == 0, first.stderr
    codes = json.loads(first.stdout)
    exported = tmp_path / "cards.json"
    exported.write_text(run_cli("keyring", "export", "cards").stdout)
    os.unlink(_profile_path())
    recovered = run_cli("recover", "site", "--fingerprint", codes["fingerprint"], "--keyring-file", str(exported),
                        "--json", input="123456\n")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout) == codes
