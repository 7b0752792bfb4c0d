"""The profile: what sealcodes remembers between runs. Metadata only.

docs/spec.md section 9: backend, device identity, credential id, RP ID, UV state, label,
epoch, format, count, fingerprint. Never a code, a device response, a PIN or a
key. Writes are atomic (temp file in the same directory, fsync, rename, fsync
of the directory), the file is mode 0600, and a file that is corrupt or of an
unknown schema is reported and left exactly as it is.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import tempfile

from .errors import ProfileError

SCHEMA = "sealcodes-profile/1"
ENV_PROFILE = "SEALCODES_PROFILE"
MAX_PROFILE_BYTES = 4 * 1024 * 1024


def default_profile_path() -> str:
    explicit = os.environ.get(ENV_PROFILE)
    if explicit:
        return explicit
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "sealcodes", "profile.json")


class Profile:
    """In-memory profile: enrollments (one per device application) and code sets (one per label)."""

    def __init__(self, data=None):
        self.data = data if data is not None else {"schema": SCHEMA, "enrollments": {}, "sets": {}}

    # enrollments -------------------------------------------------------------
    @property
    def enrollments(self) -> dict:
        return self.data["enrollments"]

    def add_enrollment(self, enrollment_id: str, metadata: dict) -> None:
        self.enrollments[enrollment_id] = copy.deepcopy(metadata)

    def enrollment(self, enrollment_id: str) -> dict:
        try:
            return self.enrollments[enrollment_id]
        except KeyError:
            raise ProfileError(f"no enrollment {enrollment_id!r} in the profile") from None

    # code sets ---------------------------------------------------------------
    @property
    def sets(self) -> dict:
        return self.data["sets"]

    def code_set(self, label: str):
        return self.sets.get(label)

    def record_set(self, label, enrollment_id, epoch, fmt, count, fingerprint) -> None:
        self.sets[label] = {
            "enrollment": enrollment_id,
            "epoch": epoch,
            "format": fmt,
            "count": count,
            "fingerprint": fingerprint,
        }


# types of the enrollment fields the backends read (a hand-edited profile must not crash them)
_ENROLLMENT_FIELDS = {
    "slot": int,
    "serial": str,
    "device_name": str,
    "device_kind": str,
    "credential_id": str,
    "credential_name": str,
    "public_key": str,
    "rp_id": str,
    "uv": bool,
    "touch": (bool, type(None)),
    "device_id": str,
    "key": str,               # piv / openpgp: which card key ("9D", "DEC")
    "curve": str,
    "key_fingerprint": str,
    "generated": bool,
}


def _validate(data, path):
    if not isinstance(data, dict) or "schema" not in data:
        raise ProfileError(f"{path} is not a sealcodes profile; left untouched")
    if data["schema"] != SCHEMA:
        raise ProfileError(f"{path} has unknown schema {str(data['schema'])[:40]!r}; left untouched "
                           "(written by a newer sealcodes?)")
    enrollments, sets = data.get("enrollments"), data.get("sets")
    if not isinstance(enrollments, dict) or not isinstance(sets, dict):
        raise ProfileError(f"{path} is corrupt (enrollments/sets missing); left untouched")
    for name, meta in enrollments.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("backend"), str) or any(
            key in meta and not isinstance(meta[key], kinds) for key, kinds in _ENROLLMENT_FIELDS.items()
        ):
            raise ProfileError(f"{path} is corrupt (enrollment {name[:40]!r}); left untouched")
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
    for label, entry in sets.items():
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("enrollment"), str)
            and type(entry.get("epoch")) is int
            and isinstance(entry.get("format"), str)
            and type(entry.get("count")) is int
            and isinstance(entry.get("fingerprint"), str)
        )
        if not ok:
            raise ProfileError(f"{path} is corrupt (code set {label[:40]!r}); left untouched")


class ProfileStore:
    """Loads and atomically saves one profile file; `locked()` serialises read-modify-write."""

    def __init__(self, path: str | None = None):
        self.path = path or default_profile_path()

    @contextlib.contextmanager
    def locked(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ProfileError(f"cannot use the profile directory {directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self) -> Profile:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_PROFILE_BYTES + 1)
        except FileNotFoundError:
            return Profile()
        except OSError as exc:
            raise ProfileError(f"cannot read profile {self.path}: {exc.strerror}") from None
        if len(raw) > MAX_PROFILE_BYTES:
            raise ProfileError(f"{self.path} is too large to be a sealcodes profile; left untouched")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ProfileError(f"{self.path} is not valid JSON; left untouched") from None
        _validate(data, self.path)
        return Profile(data)

    def save(self, profile: Profile) -> None:
        _validate(profile.data, self.path)
        directory = os.path.dirname(os.path.abspath(self.path))
        payload = json.dumps(profile.data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".profile-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise ProfileError(f"cannot write profile {self.path}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise ProfileError(f"cannot write profile {self.path}: {exc.strerror}") from None
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
