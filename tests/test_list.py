"""`sealcodes list`: every set of the profile with where it comes from and when it was made and last
rotated, from the profile alone. Profiles written before sealcodes kept dates still load and list."""

from __future__ import annotations

import json

from _support import run_cli, run_python
from sealcodes.records import CodeSetEntry, is_utc_timestamp

PIN = "list-pin-1"
ESC = "\x1b]0;owned\x07"
RLO = "\u202e"


def _profile_path(isolated_dirs):
    return isolated_dirs / "config" / "sealcodes" / "profile.json"


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _listed(*args):
    return {s["label"]: s for s in _json(run_cli("list", "--json", *args))["sets"]}


def test_list_shows_every_set_with_its_device_fingerprint_and_dates(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    alice = _json(run_cli("generate", "github.com/alice", "--json", input=PIN + "\n"))
    bob = _json(run_cli("generate", "bank example", "--json", "--format", "digits-24", "--count", "5",
                        input=PIN + "\n"))
    before = _listed()
    rotated = _json(run_cli("rotate", "github.com/alice", "--json", input=PIN + "\n"))
    listed = _listed()
    (ident,) = json.loads(_profile_path(isolated_dirs).read_text())["enrollments"]
    assert set(listed) == {"github.com/alice", "bank example"}
    a, b = listed["github.com/alice"], listed["bank example"]
    assert (a["epoch"], a["format"], a["count"], a["fingerprint"]) == (1, "base32-16", 10, rotated["fingerprint"])
    assert (b["epoch"], b["format"], b["count"], b["fingerprint"]) == (0, "digits-24", 5, bob["fingerprint"])
    assert alice["fingerprint"] != rotated["fingerprint"]
    for entry in (a, b):
        assert entry["backend"] == "applet" and entry["enrollment"] == ident and entry["keyring"] is None
        assert entry["device"]["kind"] == "emulator" and entry["device"]["serial"] == ident.split(":")[1]
        assert is_utc_timestamp(entry["created"])
    # rotate keeps the day the set was made and records when it moved on
    assert a["created"] == before["github.com/alice"]["created"] and is_utc_timestamp(a["rotated"])
    assert before["github.com/alice"]["rotated"] is None and b["rotated"] is None

    text = run_cli("list")
    assert text.returncode == 0 and text.stderr == ""
    blocks = text.stdout.split("\n")
    assert blocks[0] == f"bank example  epoch 0, digits-24, 5 codes, fingerprint {bob['fingerprint']}"
    assert blocks[1] == f"  from applet on the emulator (SOFTWARE token), enrollment {ident}"
    assert blocks[2].startswith(f"  created {b['created'][:10]} {b['created'][11:16]} UTC, rotated never")
    assert blocks[3] == "  print it again: sealcodes sheet 'bank example'   new codes: sealcodes rotate 'bank example'"
    assert blocks[4].startswith("github.com/alice  epoch 1, base32-16, 10 codes")
    assert f"rotated {a['rotated'][:10]} " in blocks[6]
    assert "sealcodes sheet github.com/alice" in blocks[7] and "sealcodes rotate github.com/alice" in blocks[7]


def test_list_needs_no_device(isolated_dirs):
    """The profile alone: no device library, no provider, no PC/SC is loaded, the emulator untouched."""
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    assert run_cli("generate", "x.example", "--json", input=PIN + "\n").returncode == 0
    emulator = isolated_dirs / "data" / "sealcodes" / "emulator"
    stamp = sorted((p.name, p.stat().st_mtime_ns) for p in emulator.rglob("*"))
    result = run_python(
        "import sys\n"
        "from sealcodes._cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('smartcard', 'fido2', 'yubikit', 'sealboard',"
        " 'sealtoken') or m.startswith(('sealcodes.devices', 'sealcodes.pcsc', 'sealcodes.backends.'))\n"
        "          and m != 'sealcodes.backends.base')\n"  # the Interaction every CLI command has
        "print(loaded, file=sys.stderr)\n"
        "assert not loaded, loaded\n")
    assert "x.example  epoch 0" in result.stdout
    assert sorted((p.name, p.stat().st_mtime_ns) for p in emulator.rglob("*")) == stamp


def test_an_empty_profile_says_how_to_make_a_set(isolated_dirs):
    empty = run_cli("list")
    assert empty.returncode == 0 and empty.stdout == "" and "sealcodes generate LABEL" in empty.stderr
    assert _json(run_cli("list", "--json")) == {"sets": []}


def _old_profile(device_name):
    """A profile as sealcodes wrote it before it kept dates (no "created", "rotated")."""
    return {"schema": "sealcodes-profile/1",
            "enrollments": {"ykoath:536594317:sealcodes": {
                "backend": "ykoath", "device_kind": "pcsc", "device_name": device_name, "serial": "536594317",
                "credential_name": "sealcodes", "algorithm": "SHA256", "touch": False, "device_id": "abc"}},
            "sets": {"old.example": {"enrollment": "ykoath:536594317:sealcodes", "epoch": 3, "format": "base32-24",
                                     "count": 12, "fingerprint": "ABCD-EFGH"}}}


def test_an_older_profile_without_dates_lists_them_as_unknown_escaped(isolated_dirs):
    path = _profile_path(isolated_dirs)
    path.parent.mkdir(parents=True)
    evil_reader = "Yubico " + ESC + RLO + "Reader"
    path.write_text(json.dumps(_old_profile(evil_reader)))
    path.chmod(0o600)
    before = path.read_bytes()
    text = run_cli("list")
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and RLO not in text.stdout
    lines = text.stdout.splitlines()
    assert lines[0] == "old.example  epoch 3, base32-24, 12 codes, fingerprint ABCD-EFGH"
    assert lines[1] == ("  from ykoath on serial 536594317, reader Yubico \\x1b]0;owned\\x07\\u202eReader, "
                        "enrollment ykoath:536594317:sealcodes")
    assert lines[2] == "  created unknown, rotated unknown"
    listed = _listed()["old.example"]
    assert listed["created"] is None and listed["rotated"] is None and listed["device"]["name"] == evil_reader
    assert "\x1b" not in run_cli("list", "--json").stdout
    assert path.read_bytes() == before  # listing never writes


def test_an_older_set_rotated_keeps_its_unknown_creation(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", input=PIN + "\n").returncode == 0
    assert run_cli("generate", "y.example", "--json", input=PIN + "\n").returncode == 0
    path = _profile_path(isolated_dirs)
    data = json.loads(path.read_text())
    del data["sets"]["y.example"]["created"]  # as an older sealcodes recorded it
    path.write_text(json.dumps(data))
    assert _json(run_cli("generate", "y.example", "--json", input=PIN + "\n"))["epoch"] == 0  # still loads
    assert run_cli("rotate", "y.example", "--json", input=PIN + "\n").returncode == 0
    listed = _listed()["y.example"]
    assert listed["created"] is None and is_utc_timestamp(listed["rotated"]) and listed["epoch"] == 1
    assert "created unknown, rotated " in run_cli("list").stdout


def test_a_malformed_date_is_refused_as_corrupt_and_left_alone(isolated_dirs):
    path = _profile_path(isolated_dirs)
    path.parent.mkdir(parents=True)
    data = _old_profile("Reader")
    data["sets"]["old.example"]["created"] = "yesterday"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    result = run_cli("list")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and '"created" must be a UTC time' in result.stderr
    assert json.loads(path.read_text()) == data


def test_a_keyring_set_lists_the_keyring_and_its_members(isolated_dirs):
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    one, two = sorted(json.loads(_profile_path(isolated_dirs).read_text())["enrollments"])
    made = run_cli("keyring", "create", "home", "--device", one, "--device", two, input=f"{PIN}\n" * 2)
    assert made.returncode == 0, made.stderr
    assert run_cli("generate", "k.example", "--keyring", "home", "--json", input=f"{PIN}\n" * 2).returncode == 0
    listed = _listed()["k.example"]
    assert listed["keyring"] == "home" and listed["backend"] is None and listed["device"] is None
    assert listed["enrollment"] == "keyring:home"
    line = run_cli("list").stdout.splitlines()[1]
    serial = one.split(":")[1]
    assert line == f"  from keyring home, any 1 of 2: member 1: applet on {serial} (1); member 2: applet on {serial} (2)"
    # --json says what the text says: the threshold and every member, with its device
    assert listed["threshold"] == 1
    enrolled = json.loads(_profile_path(isolated_dirs).read_text())["enrollments"][one]
    device = {"kind": "emulator", "name": enrolled.get("device_name"), "serial": serial}
    assert listed["members"] == [
        {"member": 1, "backend": "applet", "device": device, "summary": f"member 1: applet on {serial} (1)"},
        {"member": 2, "backend": "applet", "device": device, "summary": f"member 2: applet on {serial} (2)"}]
    # a set of a device has neither; a set whose keyring the profile lacks (edited by hand) has no threshold
    assert run_cli("generate", "plain.example", "--json", "--device", one, input=f"{PIN}\n").returncode == 0
    plain = _listed()["plain.example"]
    assert plain["threshold"] is None and plain["members"] == []
    data = json.loads(_profile_path(isolated_dirs).read_text())
    del data["keyrings"]["home"]
    _profile_path(isolated_dirs).write_text(json.dumps(data))
    orphan = _listed()["k.example"]
    assert (orphan["keyring"], orphan["threshold"], orphan["members"]) == ("home", None, [])


def test_dates_round_trip_and_stay_out_when_unknown():
    old = {"enrollment": "e", "epoch": 0, "format": "base32-16", "count": 10, "fingerprint": "AAAA-AAAA"}
    entry = CodeSetEntry.from_json(old)
    assert entry.created is None and entry.rotated is None and entry.to_json() == old
    dated = dict(old, created="2025-01-31T12:34:56Z", rotated="2025-02-01T00:00:00Z")
    assert CodeSetEntry.from_json(dated).to_json() == dated
    for bad in ("2025-01-31", "2025-13-31T12:34:56Z", "2025-01-31T12:34:56+01:00", 20250131):
        assert not is_utc_timestamp(bad)
