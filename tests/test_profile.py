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


def test_never_writes_a_profile_too_large_to_read(tmp_path):
    """`load` refuses more than 4 MiB, so `save` refuses to write more: nothing is written, the
    profile that was there stays (a profile keeping many keyring documents must not lock itself out)."""
    store = ProfileStore(str(tmp_path / "p.json"))
    store.save(_profile(1))
    before = (tmp_path / "p.json").read_bytes()
    big = Profile().with_enrollment("e", Enrollment.from_json({"backend": "applet", "pad": "x" * (4 * 1024 * 1024)}))
    with pytest.raises(ProfileError, match="larger than 4 MiB") as info:
        store.save(big)
    assert "\n" not in str(info.value) and (tmp_path / "p.json").read_bytes() == before
    assert store.load().to_json() == _profile(1).to_json()


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
    if n == 2:
        print("writing", flush=True)
"""


def test_kill_9_at_any_point_leaves_old_or_new(tmp_path):
    path = tmp_path / "profile.json"
    store = ProfileStore(str(path))
    last_epoch = -1
    for round_ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE)
        # killed a different while after it is writing (not after a fixed time: a loaded machine
        # may still be starting Python then, and nothing would be tested)
        assert proc.stdout.readline() == b"writing\n"
        time.sleep(0.01 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
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


# --- path edge cases (issue: symlinks, FIFOs, permissions) ------------------------------------------------
def test_symlinked_profile_is_written_through_to_its_target(tmp_path):
    """A profile kept elsewhere (a dotfiles repository) and linked in stays the one that is updated."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir(mode=0o700)
    target = dotfiles / "sealcodes-profile.json"
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    link = config / "profile.json"
    link.symlink_to(target)  # dangling until the first save
    store = ProfileStore(str(link))
    store.save(_profile(1))
    store.save(_profile(2))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["sets"]["label-2"]["epoch"] == 2
    assert store.load().to_json() == _profile(2).to_json()
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert [f for f in os.listdir(dotfiles) if f.endswith(".tmp")] == []
    assert sorted(os.listdir(config)) == ["profile.json"]  # the temp file and lock live by the target
    # a second link to the same target (e.g. through a linked directory) shares the one lock file
    other = tmp_path / "other"
    other.symlink_to(config, target_is_directory=True)
    with ProfileStore(str(other / "profile.json")).locked():
        pass
    assert sorted(os.listdir(dotfiles)) == ["sealcodes-profile.json", "sealcodes-profile.json.lock"]


def test_relative_symlink_chain_is_followed(tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "real" / "p.json").write_text(json.dumps(_profile(5).to_json()))
    (tmp_path / "real" / "p.json").chmod(0o600)
    (tmp_path / "hop.json").symlink_to("real/p.json")
    (tmp_path / "profile.json").symlink_to("hop.json")
    store = ProfileStore(str(tmp_path / "profile.json"))
    assert store.load().to_json() == _profile(5).to_json()
    store.save(_profile(6))
    assert (tmp_path / "hop.json").is_symlink() and (tmp_path / "profile.json").is_symlink()
    assert json.loads((tmp_path / "real" / "p.json").read_text())["sets"]["label-6"]["epoch"] == 6


def _with_timeout(seconds, fn):
    """Run fn in a child process: a hang becomes a test failure, not a hung suite."""
    import multiprocessing

    queue = multiprocessing.get_context("fork").Queue()

    def child():
        try:
            fn()
            queue.put("returned")
        except ProfileError as exc:
            queue.put("ProfileError: " + str(exc))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            queue.put(f"{type(exc).__name__}: {exc}")

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(seconds)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"hung for more than {seconds} s")
    return queue.get(timeout=5)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_non_regular_profile_is_refused_never_a_hang(tmp_path, kind):
    path = tmp_path / "profile.json"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    store = ProfileStore(str(path))
    for action in (store.load, lambda: store.save(_profile(1))):
        outcome = _with_timeout(10, action)
        assert outcome.startswith("ProfileError: ") and "not a regular file" in outcome, outcome
    assert (path.is_fifo() if kind == "fifo" else True)


def test_non_regular_profile_through_the_cli_is_one_line_and_quick(tmp_path):
    from _support import run_cli

    path = tmp_path / "profile.json"
    os.mkfifo(path, 0o600)
    result = run_cli("--profile", str(path), "generate", "x", timeout=20)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not a regular file" in result.stderr and path.is_fifo()


@pytest.mark.parametrize("mode", [0o777, 0o757, 0o1777, 0o775])
def test_directory_writable_by_others_is_refused(tmp_path, mode, monkeypatch):
    directory = tmp_path / "shared"
    directory.mkdir()
    store = ProfileStore(str(directory / "profile.json"))
    store.save(_profile(1))
    before = (directory / "profile.json").read_bytes()
    directory.chmod(mode)
    # group-writable is accepted only for the user's private group: here the group is someone else's
    monkeypatch.setattr("sealcodes.profile._is_private_group", lambda gid: False)
    for action in (store.load, lambda: store.save(_profile(2))):
        with pytest.raises(ProfileError) as info:
            with store.locked():
                action()
        message = str(info.value)
        assert "writable by other users" in message and "chmod go-w" in message and "\n" not in message
    assert (directory / "profile.json").read_bytes() == before


def test_symlink_in_a_directory_writable_by_others_is_refused(tmp_path):
    """Whoever can replace the link chooses the file: the link's directory is checked too."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    ProfileStore(str(private / "profile.json")).save(_profile(1))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "profile.json").symlink_to(private / "profile.json")
    with pytest.raises(ProfileError, match="writable by other users"):
        ProfileStore(str(shared / "profile.json")).load()


def test_group_writable_directory_of_a_private_group_is_accepted(tmp_path, monkeypatch):
    directory = tmp_path / "upg"
    directory.mkdir()
    directory.chmod(0o770)
    monkeypatch.setattr("sealcodes.profile._is_private_group", lambda gid: True)
    store = ProfileStore(str(directory / "profile.json"))
    store.save(_profile(1))
    assert store.load().to_json() == _profile(1).to_json()


def test_profile_file_writable_by_others_is_refused(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(_profile(1).to_json()))
    path.chmod(0o666)
    with pytest.raises(ProfileError, match="writable by other users"):
        ProfileStore(str(path)).load()


# --- content edge cases ---------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [200, 5000, 200000])
def test_deeply_nested_json_is_a_corrupt_profile(tmp_path, depth):
    path = tmp_path / "profile.json"
    data = '{"schema": "sealcodes-profile/1", "enrollments": {}, "sets": {}, "x": ' + "[" * depth + "]" * depth + "}"
    path.write_text(data)
    store = ProfileStore(str(path))
    with pytest.raises(ProfileError) as info:
        store.load()
    assert "corrupt" in str(info.value) and "left untouched" in str(info.value)
    assert path.read_text() == data


def test_deeply_nested_json_through_the_cli(tmp_path):
    from _support import run_cli

    path = tmp_path / "profile.json"
    path.write_text("[" * 100000 + "]" * 100000)
    result = run_cli("--profile", str(path), "generate", "x")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "RecursionError" not in result.stderr and "corrupt" in result.stderr


def test_nfd_label_keys_are_normalized_to_nfc(tmp_path):
    import unicodedata

    nfc = unicodedata.normalize("NFC", "café.example/José")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    path = tmp_path / "profile.json"
    data = _profile(1).to_json()
    data["sets"] = {nfd: dict(data["sets"]["label-1"])}
    path.write_text(json.dumps(data, ensure_ascii=False))
    store = ProfileStore(str(path))
    profile = store.load()
    assert list(profile.sets) == [nfc] and profile.code_set(nfc).epoch == 1
    store.save(profile.with_set(nfc, CodeSetEntry("applet:ABCD:1", 2, "base32-16", 10, "47JR-PGW1")))
    assert list(json.loads(path.read_text())["sets"]) == [nfc]  # one entry, not an NFD and an NFC one


def test_the_same_label_twice_in_two_spellings_is_refused(tmp_path):
    import unicodedata

    nfc = "caf\u00e9"
    path = tmp_path / "profile.json"
    data = _profile(1).to_json()
    entry = data["sets"]["label-1"]
    data["sets"] = {nfc: dict(entry), unicodedata.normalize("NFD", nfc): dict(entry, epoch=7)}
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="twice"):
        ProfileStore(str(path)).load()


@pytest.mark.parametrize("backend, field, value, expected", [
    ("applet", "slot", 99, '"slot" must be a whole number from 1 to 8 (found 99)'),
    ("applet", "slot", -1, '"slot" must be a whole number from 1 to 8 (found -1)'),
    ("applet", "slot", True, '"slot" must be a whole number from 1 to 8 (found true)'),
    ("applet", "slot", 0, '"slot" must be a whole number from 1 to 8 (found 0)'),
    ("yubiotp", "slot", 3, '"slot" must be a whole number from 1 to 2 (found 3)'),
    ("applet", "slot", "1", '"slot" must be a whole number from 1 to 8 (found "1")'),
    ("fido2", "uv", 1, '"uv" must be true or false (found 1)'),
    ("applet", "serial", 1234, '"serial" must be text (found 1234)'),
])
def test_hand_edited_enrollment_fields_get_a_message_naming_the_field(tmp_path, backend, field, value, expected):
    path = tmp_path / "profile.json"
    data = _profile(1).to_json()
    data["enrollments"]["applet:ABCD:1"]["backend"] = backend
    data["enrollments"]["applet:ABCD:1"][field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError) as info:
        ProfileStore(str(path)).load()
    message = str(info.value)
    assert expected in message and "applet:ABCD:1" in message and "left untouched" in message, message


@pytest.mark.parametrize("field, value, expected", [
    ("epoch", -1, '"epoch" must be a whole number from 0 to 4294967295 (found -1)'),
    ("epoch", True, '"epoch" must be a whole number from 0 to 4294967295 (found true)'),
    ("epoch", 2**32, '"epoch" must be a whole number from 0 to 4294967295 (found 4294967296)'),
    ("count", 0, '"count" must be a whole number from 1 to 100 (found 0)'),
    ("count", 101, '"count" must be a whole number from 1 to 100 (found 101)'),
    ("format", "base64", '"format" must be one of base32-16, base32-24, digits-24 (found "base64")'),
    ("fingerprint", 5, '"fingerprint" must be text (found 5)'),
    ("since", 5, '"since" must be a whole number from 0 to'),
    ("since", "0", '"since" must be a whole number from 0 to'),
])
def test_hand_edited_set_fields_get_a_message_naming_the_field(tmp_path, field, value, expected):
    path = tmp_path / "profile.json"
    data = _profile(1).to_json()
    data["sets"]["label-1"][field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError) as info:
        ProfileStore(str(path)).load()
    message = str(info.value)
    assert expected in message and "label-1" in message, message


# --- portability (issue 9: macOS and Windows) -------------------------------------------------------------
def test_default_paths_per_os(tmp_path, monkeypatch):
    from sealcodes.profile import default_profile_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "AppData" / "Roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData" / "Local"))
    assert default_profile_path(platform="linux") == str(tmp_path / "xdg" / "sealcodes" / "profile.json")
    assert default_profile_path(platform="freebsd14") == str(tmp_path / "xdg" / "sealcodes" / "profile.json")
    assert default_profile_path(platform="darwin") == str(
        tmp_path / "home" / "Library" / "Application Support" / "sealcodes" / "profile.json")
    assert default_profile_path(platform="win32") == os.path.join(
        str(tmp_path / "AppData" / "Roaming"), "sealcodes", "profile.json")
    monkeypatch.delenv("APPDATA")
    assert default_profile_path(platform="win32") == os.path.join(
        str(tmp_path / "home"), "AppData", "Roaming", "sealcodes", "profile.json")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert default_profile_path(platform="linux") == str(tmp_path / "home" / ".config" / "sealcodes" / "profile.json")
    monkeypatch.setenv("SEALCODES_PROFILE", str(tmp_path / "explicit.json"))
    for system in ("linux", "darwin", "win32"):
        assert default_profile_path(platform=system) == str(tmp_path / "explicit.json")


_NO_FCNTL = """
import sys
sys.modules["fcntl"] = None          # as on Windows: any 'import fcntl' fails
import sealcodes._cli, sealcodes.profile, sealcodes.operations
assert "fcntl" not in [m for m in sys.modules if sys.modules[m] is not None]
from sealcodes.profile import Profile, ProfileStore
from sealcodes.records import CodeSetEntry
store = ProfileStore(sys.argv[1])
with store.locked():
    p = store.load()
    store.save(p.with_set("l", CodeSetEntry("e", 3, "base32-16", 10, "AAAA-AAAA")))
print(ProfileStore(sys.argv[1]).load().code_set("l").epoch)
"""


def test_host_imports_and_locks_without_fcntl(tmp_path):
    """No fcntl at import time; locking goes through the portable lock (its fcntl-less fallback here)."""
    path = tmp_path / "profile.json"
    result = subprocess.run([sys.executable, "-c", _NO_FCNTL, str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_no_host_module_imports_fcntl_when_it_loads():
    """fcntl is Unix-only: no host module imports it when it loads (only inside a function that
    falls back without it, as the profile lock does)."""
    import ast
    from pathlib import Path

    import sealcodes

    def module_level(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if isinstance(node, ast.ClassDef):
                    yield from module_level(node.body)
                continue
            yield node
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from module_level(getattr(node, field, []))

    for path in Path(sealcodes.__file__).parent.rglob("*.py"):
        for node in module_level(ast.parse(path.read_text()).body):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            assert "fcntl" not in names, path


def test_a_lock_the_filesystem_refuses_is_a_profile_error(tmp_path, monkeypatch):
    """flock() failing (ENOLCK: an NFS home without a lock daemon) is one clear line, not a crash."""
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(ProfileError, match="cannot lock the profile .*No locks available"):
        with ProfileStore(str(tmp_path / "profile.json")).locked():
            pass


def test_unix_lock_and_portable_lock_exclude_each_other(tmp_path):
    """sealcodes' flock and the portable filelock (its Unix flavour, as another sealcodes process
    without the fast path would take it) are one lock."""
    from filelock import FileLock, Timeout

    path = str(tmp_path / "profile.json")
    with ProfileStore(path).locked():
        with pytest.raises(Timeout):
            FileLock(path + ".lock").acquire(timeout=0.2)
    other = FileLock(path + ".lock")
    other.acquire(timeout=1)
    try:
        holder = subprocess.run([sys.executable, "-c", _TRY_LOCK, path], capture_output=True, text=True, timeout=30)
        assert holder.stdout.strip() == "busy", holder.stderr
    finally:
        other.release()


_TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("busy")
"""


_LOCK_HOLDER = """
import sys, time
from sealcodes.profile import ProfileStore
with ProfileStore(sys.argv[1]).locked():
    print("locked", flush=True)
    time.sleep(1.0)
    open(sys.argv[2], "w").close()   # the last thing done while holding the lock
"""


def test_lock_serializes_two_processes(tmp_path):
    path = str(tmp_path / "profile.json")
    marker = tmp_path / "holder-done"
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, path, str(marker)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with ProfileStore(path).locked():
            assert marker.exists()  # we only got the lock once the holder was done with it
    finally:
        holder.wait(timeout=10)
        holder.stdout.close()
