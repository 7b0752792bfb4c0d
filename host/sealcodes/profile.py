"""The profile: what sealcodes remembers between runs. Metadata only.

docs/spec.md section 9: backend, device identity, credential id, RP ID, UV state, label,
epoch, format, count, fingerprint. Never a code, a device response, a PIN or a
key. Writes are atomic (temp file in the same directory, fsync, rename, fsync
of the directory), the file is mode 0600, and a file that is corrupt or of an
unknown schema is reported and left exactly as it is.

The file itself (docs/host-security.md):
- where: --profile / $SEALCODES_PROFILE, else per OS: $XDG_CONFIG_HOME/sealcodes/profile.json
  (~/.config/...) on Linux and other Unixes, ~/Library/Application Support/sealcodes/profile.json
  on macOS, %APPDATA%\\sealcodes\\profile.json on Windows;
- a symlinked profile is read and written through to the link's target: the temp file, the
  rename and the lock file are in the target's directory, and the link stays a link;
- only a regular file is used: a FIFO, device or directory at the path is refused (opened
  non-blocking and checked before reading, so nothing hangs);
- as ssh does with ~/.ssh, a profile (or its directory) that other users can write to, or that
  belongs to another user, is refused; a group-writable one is accepted only when the group is
  the user's private group;
- read-modify-write is serialized across processes by a lock file next to the profile: flock()
  on Unix, the portable `filelock` package elsewhere (msvcrt on Windows), both imported only
  when a lock is taken;
- content: JSON nested deeper than the schema allows, fields of the wrong type or range, and
  one label in two Unicode spellings are "corrupt" with a message naming the field; label keys
  are normalized to NFC, as labels are everywhere else.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import unicodedata

from . import records
from .errors import ProfileError

SCHEMA = records.PROFILE_SCHEMA
ENV_PROFILE = "SEALCODES_PROFILE"
APP_NAME = "sealcodes"
PROFILE_FILE = "profile.json"
MAX_PROFILE_BYTES = 4 * 1024 * 1024
MAX_NESTING = 32  # the schema needs 3 levels; room for fields a later version may add


def default_profile_path(platform: str | None = None) -> str:
    """$SEALCODES_PROFILE, else the per-OS configuration directory (see the module docstring)."""
    explicit = os.environ.get(ENV_PROFILE)
    if explicit:
        return explicit
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Application Support", APP_NAME, PROFILE_FILE)
    if platform == "win32":
        # the roaming application data folder (FOLDERID_RoamingAppData), which %APPDATA% names
        appdata = os.environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
        return os.path.join(appdata, APP_NAME, PROFILE_FILE)
    # Linux and other Unixes: exactly the XDG rule sealcodes has always used
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, APP_NAME, PROFILE_FILE)


# the in-memory model is records.Profile (frozen; with_enrollment / with_set make a new one)
Profile = records.Profile


# --- validation ------------------------------------------------------------------------------------------
def _shown(value) -> str:
    """A JSON value as the profile spells it, short, for a message (escaped on display by the CLI)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _whole(low: int, high: int):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"a whole number from {low} to {high}"
        return None
    return check


def _text(value):
    return None if isinstance(value, str) else "text"


def _flag(value):
    return None if isinstance(value, bool) else "true or false"


def _flag_or_null(value):
    return None if value is None or isinstance(value, bool) else "true, false or null"


def _one_of(choices):
    def check(value):
        return None if isinstance(value, str) and value in choices else "one of " + ", ".join(choices)
    return check


# slots each backend has (the applet's 8, the YubiKey OTP application's 2)
_SLOTS = {"applet": 8, "yubiotp": 2}
_MAX_SLOTS = max(_SLOTS.values())

# the enrollment fields the backends read (a hand-edited profile must not crash them or mislead)
_ENROLLMENT_FIELDS = {
    "backend": _text,
    "serial": _text,
    "device_name": _text,
    "device_kind": _text,
    "credential_id": _text,
    "credential_name": _text,
    "public_key": _text,
    "rp_id": _text,
    "uv": _flag,
    "touch": _flag_or_null,
    "device_id": _text,
    "key": _text,             # piv / openpgp: which card key ("9D", "DEC")
    "curve": _text,
    "key_fingerprint": _text,
    "generated": _flag,
}


_SET_DATES = ("created", "rotated")


def _set_fields():
    from . import derivation
    from .formats import FORMATS

    return {
        "enrollment": _text,
        "epoch": _whole(derivation.EPOCH_MIN, derivation.EPOCH_MAX),
        "format": _one_of(list(FORMATS)),
        "count": _whole(derivation.COUNT_MIN, derivation.COUNT_MAX),
        "fingerprint": _text,
    }


def _corrupt(path, what, field, expected, value):
    return ProfileError(f"{path} is corrupt: {what}: {json.dumps(field)} must be {expected} "
                        f"(found {_shown(value)}); left untouched")


def _depth_ok(data) -> bool:
    """True when no container is nested deeper than MAX_NESTING (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_NESTING:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _normalize_labels(data, path) -> None:
    """Label keys in NFC, as derivation normalizes labels: an NFD spelling is the same label."""
    sets = data["sets"]
    if all(unicodedata.is_normalized("NFC", label) for label in sets):
        return
    normalized = {}
    for label, entry in sets.items():
        key = unicodedata.normalize("NFC", label)
        if key in normalized and normalized[key] != entry:
            raise ProfileError(f"{path} is corrupt: the label {key[:40]!r} is there twice, in two Unicode "
                               "spellings with different sets; left untouched")
        normalized[key] = entry
    data["sets"] = normalized


def _validate(data, path):
    if not isinstance(data, dict) or "schema" not in data:
        raise ProfileError(f"{path} is not a sealcodes profile; left untouched")
    if data["schema"] != SCHEMA:
        raise ProfileError(f"{path} has unknown schema {str(data['schema'])[:40]!r}; left untouched "
                           "(written by a newer sealcodes?)")
    if not _depth_ok(data):
        raise ProfileError(f"{path} is corrupt (nested deeper than a profile is); left untouched")
    enrollments, sets = data.get("enrollments"), data.get("sets")
    if not isinstance(enrollments, dict) or not isinstance(sets, dict):
        raise ProfileError(f"{path} is corrupt (enrollments/sets missing); left untouched")
    for name, meta in enrollments.items():
        what = f"enrollment {name[:40]!r}"
        if not isinstance(meta, dict):
            raise ProfileError(f"{path} is corrupt: {what} is not an object; left untouched")
        if "backend" not in meta:
            raise ProfileError(f"{path} is corrupt: {what} has no \"backend\"; left untouched")
        for field, check in _ENROLLMENT_FIELDS.items():
            if field in meta and (expected := check(meta[field])) is not None:
                raise _corrupt(path, what, field, expected, meta[field])
        if "slot" in meta:
            expected = _whole(1, _SLOTS.get(meta["backend"], _MAX_SLOTS))(meta["slot"])
            if expected is not None:
                raise _corrupt(path, what, "slot", expected, meta["slot"])
    keyrings = data.get("keyrings", {})
    if not isinstance(keyrings, dict):
        raise ProfileError(f"{path} is corrupt (keyrings); left untouched")
    for name, doc in keyrings.items():
        from .keyring import KeyringError, from_document

        try:
            if from_document(doc).name != name:
                raise KeyringError("name differs")
        except KeyringError:
            raise ProfileError(f"{path} is corrupt (keyring {name[:40]!r}); left untouched") from None
    set_fields = _set_fields()
    for label, entry in sets.items():
        what = f"code set {label[:40]!r}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{path} is corrupt: {what} is not an object; left untouched")
        for field, check in set_fields.items():
            if field not in entry:
                raise ProfileError(f"{path} is corrupt: {what} has no {json.dumps(field)}; left untouched")
            if (expected := check(entry[field])) is not None:
                raise _corrupt(path, what, field, expected, entry[field])
        for field in _SET_DATES:  # optional: profiles written before sealcodes kept dates have none
            if entry.get(field) is not None and not records.is_utc_timestamp(entry[field]):
                raise _corrupt(path, what, field, "a UTC time such as \"2025-01-31T12:34:56Z\"", entry[field])
        if entry.get("since") is not None:  # optional too: which epoch the set's present source made first
            if (expected := _whole(0, entry["epoch"])(entry["since"])) is not None:
                raise _corrupt(path, what, "since", expected, entry["since"])


# --- the file ------------------------------------------------------------------------------------------------
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _is_private_group(gid: int) -> bool:
    """True when group `gid` is the user's own private group (named after the user, nobody else in it),
    as Debian's ssh accepts group-writable files for such groups."""
    try:
        import grp
        import pwd

        user = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(gid)
    except (ImportError, KeyError, OSError):
        return False
    return gid == user.pw_gid and group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def _check_owner_and_mode(st, path, what) -> None:
    """ssh's rule: refuse what another user owns or can write to (POSIX only)."""
    if not hasattr(os, "geteuid"):
        return  # Windows: access is governed by ACLs under the user's profile directory
    if st.st_uid not in (os.geteuid(), 0):
        raise ProfileError(f"refusing the profile: {what} {path} belongs to another user (uid {st.st_uid})")
    writable_by_others = st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP
                                                         and not _is_private_group(st.st_gid))
    if writable_by_others:
        fix = "chmod go-w" if what == "directory" else "chmod 600"
        raise ProfileError(f"refusing the profile: {what} {path} is writable by other users, who could "
                           f"replace what it records; fix with: {fix} {path}")


class ProfileStore:
    """Loads and atomically saves one profile file; `locked()` serialises read-modify-write."""

    def __init__(self, path: str | None = None):
        self.path = path or default_profile_path()

    # --- where the profile really is ---------------------------------------------------------------------
    def _target(self) -> str:
        """The file the profile lives in: the path, or where its symlink(s) point (written through)."""
        return os.path.realpath(self.path)

    def _check_directories(self, target) -> None:
        """The target's directory, and the link's own when the profile is a symlink (whoever can
        replace the link chooses the file)."""
        self._check_directory(os.path.dirname(target))
        link_directory = os.path.dirname(os.path.abspath(self.path))
        if os.path.realpath(link_directory) != os.path.dirname(target):
            self._check_directory(link_directory)

    def _check_directory(self, directory) -> None:
        try:
            st = os.stat(directory)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            return  # a file where a parent directory should be: creating it fails with a clear message
        except OSError as exc:
            raise ProfileError(f"cannot use the profile directory {directory}: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ProfileError(f"cannot use the profile directory {directory}: not a directory")
        _check_owner_and_mode(st, directory, "directory")

    def _check_existing(self, target) -> None:
        """An existing profile must be a regular file nobody else can write (checked without opening it)."""
        try:
            st = os.stat(target)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ProfileError(f"cannot use profile {self.path}: {exc.strerror}") from None
        self._check_file_stat(st)

    def _check_file_stat(self, st) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise ProfileError(f"{self.path} is not a regular file ({_kind(st.st_mode)}); refusing to use it")
        _check_owner_and_mode(st, self.path, "file")

    def _prepare_directory(self, target, failure) -> str:
        directory = os.path.dirname(target)
        self._check_directories(target)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ProfileError(f"{failure}: {exc.strerror}") from None
        return directory

    # --- locking -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        target = self._target()
        self._prepare_directory(target, f"cannot use the profile directory {os.path.dirname(target)}")
        with _file_lock(target + ".lock", self.path):
            yield

    # --- reading -----------------------------------------------------------------------------------------
    def load(self) -> Profile:
        target = self._target()
        self._check_directories(target)
        # non-blocking: a FIFO must not hang the open; it is refused right after by fstat
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(target, flags)
        except FileNotFoundError:
            return Profile()
        except IsADirectoryError:
            raise ProfileError(f"{self.path} is not a regular file (a directory); refusing to use it") from None
        except OSError as exc:
            raise ProfileError(f"cannot read profile {self.path}: {exc.strerror}") from None
        try:
            self._check_file_stat(os.fstat(fd))
            chunks, size = [], 0
            while size <= MAX_PROFILE_BYTES:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise ProfileError(f"cannot read profile {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        raw = b"".join(chunks)
        if len(raw) > MAX_PROFILE_BYTES:
            raise ProfileError(f"{self.path} is too large to be a sealcodes profile; left untouched")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ProfileError(f"{self.path} is not valid JSON; left untouched") from None
        except RecursionError:
            raise ProfileError(f"{self.path} is corrupt (nested deeper than a profile is); left untouched") from None
        _validate(data, self.path)
        _normalize_labels(data, self.path)
        try:
            return Profile.from_json(data)
        except ProfileError as exc:
            raise ProfileError(f"{self.path}: {exc}") from None

    # --- writing -----------------------------------------------------------------------------------------
    def save(self, profile: Profile) -> None:
        data = profile.to_json()
        _validate(data, self.path)
        _normalize_labels(data, self.path)
        target = self._target()
        try:
            payload = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        except (TypeError, ValueError, RecursionError):
            raise ProfileError(f"refusing to write profile {self.path}: it holds data JSON cannot represent") from None
        directory = self._prepare_directory(target, f"cannot write profile {self.path}")
        self._check_existing(target)
        try:
            import tempfile  # only when the profile is written: most commands only read it

            fd, tmp = tempfile.mkstemp(prefix=".profile-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise ProfileError(f"cannot write profile {self.path}: {exc.strerror}") from None
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            # the target, not the link: a symlinked profile stays a link to the updated file
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise ProfileError(f"cannot write profile {self.path}: {exc.strerror}") from None
        _fsync_directory(directory)


def _fsync_directory(directory) -> None:
    """Make the rename durable (POSIX); Windows cannot open a directory, and needs no such step."""
    if os.name == "nt":
        return
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _file_lock(path: str, shown: str):
    """An exclusive lock on `path` for the block. On Unix, flock() directly (what filelock does there
    too, so both kinds of process exclude each other; importing filelock would cost ~15 ms on every
    command); elsewhere (Windows: msvcrt) the portable `filelock` package. fcntl is imported here,
    never when the module loads, so the host imports on systems without it."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is None:
        from filelock import FileLock

        lock = FileLock(path, mode=0o600)
        try:
            lock.acquire()
        except OSError as exc:
            raise ProfileError(f"cannot lock the profile {shown}: {exc.strerror or exc}") from None
        try:
            yield
        finally:
            lock.release()
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise ProfileError(f"cannot lock the profile {shown}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:  # e.g. ENOLCK on an NFS home without a lock daemon
            raise ProfileError(f"cannot lock the profile {shown}: {exc.strerror or exc}") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
