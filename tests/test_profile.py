"""The profile store: metadata only, atomic replace, 0600, corrupt files left untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sealcodes.errors import ProfileError
from sealcodes.profile import SCHEMA, Profile, ProfileStore, default_profile_path
from sealcodes.records import CodeSetEntry, Enrollment


def _profile(n):
    p = Profile().with_enrollment("applet:ABCD:1", Enrollment(backend="applet", serial="ABCD", slot=1))
    return p.with_set(f"label-{n}", CodeSetEntry("applet:ABCD:1", n, "base32-16", 10, "47JR-PGW1"))


def test_round_trip_and_mode(tmp_path):
    store = ProfileStore(str(tmp_path / "sub" / "profile.json"))
    assert store.load() == Profile()  # missing file: empty profile
    store.save(_profile(3))
    assert store.load().to_json() == _profile(3).to_json()
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert [f for f in os.listdir(tmp_path / "sub") if f.endswith(".tmp")] == []


def test_default_path_follows_xdg_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_profile_path() == str(tmp_path / "sealcodes" / "profile.json")
    monkeypatch.setenv("SEALCODES_PROFILE", str(tmp_path / "x.json"))
    assert default_profile_path() == str(tmp_path / "x.json")


@pytest.mark.parametrize("content", [
    b"", b"[]", b"{", b'{"schema": "other/1"}', json.dumps({"schema": SCHEMA, "enrollments": {"a": 1}, "sets": {}}).encode(),
    json.dumps({"schema": SCHEMA, "enrollments": {}, "sets": {"l": {"epoch": "0"}}}).encode(),
])
def test_corrupt_or_foreign_is_reported_and_left(tmp_path, content):
    path = tmp_path / "profile.json"
    path.write_bytes(content)
    store = ProfileStore(str(path))
    with pytest.raises(ProfileError) as info:
        store.load()
    assert "left untouched" in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == content


def test_refuses_to_save_an_invalid_profile(tmp_path):
    store = ProfileStore(str(tmp_path / "p.json"))
    bad = Profile().with_set("x", CodeSetEntry(1, 0, "base32-16", 10, "AAAA-AAAA"))  # enrollment id not text
    with pytest.raises(ProfileError):
        store.save(bad)
    assert not (tmp_path / "p.json").exists()


_WRITER = """
import sys
from sealcodes.profile import Profile, ProfileStore
from sealcodes.records import CodeSetEntry, Enrollment
store = ProfileStore(sys.argv[1])
n = 0
while True:
    p = Profile().with_enrollment("e", Enrollment.from_json({"backend": "applet", "pad": "x" * (n % 5000)}))
    p = p.with_set("l", CodeSetEntry("e", n, "base32-16", 10, "AAAA-AAAA"))
    store.save(p)
    n += 1
"""


def test_kill_9_at_any_point_leaves_old_or_new(tmp_path):
    path = tmp_path / "profile.json"
    store = ProfileStore(str(path))
    last_epoch = -1
    for round_ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
        time.sleep(0.15 + 0.03 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not path.exists():
            continue
        profile = store.load()  # raises if half-written
        entry = profile.code_set("l")
        assert entry.fingerprint == "AAAA-AAAA"
        assert len(profile.enrollment("e").extra["pad"]) == entry.epoch % 5000
        last_epoch = entry.epoch
    assert last_epoch > 0


def test_unusable_profile_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    store = ProfileStore(str(blocker / "sealcodes" / "profile.json"))
    with pytest.raises(ProfileError, match="cannot"):
        with store.locked():
            pass
    with pytest.raises(ProfileError, match="cannot write"):
        store.save(_profile(1))


def test_enrollment_field_types_are_checked(tmp_path):
    path = tmp_path / "profile.json"
    data = _profile(1).to_json()
    data["enrollments"]["applet:ABCD:1"]["slot"] = "x"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="corrupt"):
        ProfileStore(str(path)).load()
