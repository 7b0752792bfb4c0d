"""Typed records the library passes around: enrollments, code sets, the profile. Frozen
dataclasses; no I/O (profile.py reads and writes the file, these map it to and from JSON).
Records only some commands need live where those commands are: the enrollment options of each
backend in enrollment.py, `DeviceInfo` in devices/discovery.py.

The JSON shapes are those of profile schema `sealcodes-profile/1` (docs/spec.md, profile):
an enrollment is a flat object with only the fields its backend uses; unknown fields (written
by a newer sealcodes, or added by hand) are kept as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .errors import ProfileError
from .numerals import ascii_int, is_ascii_digits

PROFILE_SCHEMA = "sealcodes-profile/1"

KIND_PCSC = "pcsc"  # a card in a PC/SC reader
KIND_HID = "hid"  # a FIDO key on USB HID

#: code sets bound to a keyring name it, not an enrollment, as their "enrollment": keyring:<name>
KEYRING_PREFIX = "keyring:"


def keyring_ident(name: str) -> str:
    return KEYRING_PREFIX + name


def keyring_name_of(ident: str | None) -> str | None:
    if isinstance(ident, str) and ident.startswith(KEYRING_PREFIX):
        return ident[len(KEYRING_PREFIX):]
    return None
# any other kind is the name of a device provider (e.g. "emulator")


def serial_text(value) -> str | None:
    """The one spelling of a device serial: decimal digits, as YubiKeys print theirs and ykman
    shows it. Bytes are read big-endian (our token's 4-byte serial)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return str(int.from_bytes(value, "big"))
    return str(int(value))


def same_serial(recorded: str | None, found: str | None) -> bool:
    """Whether a serial recorded in a profile names the device that reports `found` (decimal).

    Profiles written before one spelling was chosen hold our token's serial as 8 hex digits
    (`B4693929`); they still match their device.
    """
    if not recorded or not found:
        return False
    if recorded == found:
        return True
    number = ascii_int(found) if len(recorded) == 8 else None  # ASCII digits only: int() reads '١' as 1
    if number is not None:
        return recorded.upper() == f"{number:08X}"
    return False


# --- enrollments and code sets ----------------------------------------------------------------
# JSON field -> accepted types (bool is an int in Python: checked apart)
_ENROLLMENT_TYPES = {
    "backend": str,
    "device_kind": str,
    "device_name": str,
    "serial": str,
    "slot": int,
    "touch": (bool, type(None)),
    "adopted": bool,
    "credential_name": str,
    "algorithm": str,
    "device_id": str,
    "rp_id": str,
    "credential_id": str,
    "public_key": str,
    "uv": bool,
    "discoverable": bool,
    "aaguid": str,
    "key": str,
    "curve": str,
    "key_fingerprint": str,
    "generated": bool,
}


@dataclass(frozen=True)
class Enrollment:
    """One sealed secret on one device application (metadata only, never a secret)."""

    backend: str
    device_kind: str = KIND_PCSC
    device_name: str | None = None  # PC/SC reader name or HID path at enrollment
    serial: str | None = None  # decimal (serial_text); older profiles: see same_serial
    slot: int | None = None  # applet 1..8, yubiotp 1..2
    touch: bool | None = None  # ykoath, yubiotp (None: unknown, an adopted slot)
    adopted: bool | None = None  # yubiotp
    credential_name: str | None = None  # ykoath
    algorithm: str | None = None  # ykoath
    device_id: str | None = None  # ykoath: the OATH application's id (changes on its reset)
    rp_id: str | None = None  # fido2
    credential_id: str | None = None  # fido2, base64url
    public_key: str | None = None  # fido2, base64url COSE key
    uv: bool | None = None  # fido2: user verification at every use
    discoverable: bool | None = None  # fido2
    aaguid: str | None = None  # fido2
    key: str | None = None  # piv / openpgp: which card key ("9D", "DEC")
    curve: str | None = None  # piv / openpgp
    key_fingerprint: str | None = None  # piv / openpgp
    generated: bool | None = None  # piv / openpgp: the key was made on the card at enrollment
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # fields we do not know

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "enrollment") -> "Enrollment":
        if not isinstance(data, Mapping) or not isinstance(data.get("backend"), str):
            raise ProfileError(f"the profile is corrupt ({where}); left untouched")
        values, extra = {}, {}
        for key, value in data.items():
            kinds = _ENROLLMENT_TYPES.get(key)
            if kinds is None:
                extra[key] = value
                continue
            if not isinstance(value, kinds) or (kinds is int and isinstance(value, bool)):
                raise ProfileError(f"the profile is corrupt ({where}: {key}); left untouched")
            values[key] = value
        return cls(**values, extra=MappingProxyType(extra))

    def to_json(self) -> dict:
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is not None or (f.name == "touch" and self.backend == "yubiotp"):
                out[f.name] = value
        return out

    def replace(self, **changes) -> "Enrollment":
        return dataclasses.replace(self, **changes)

    @property
    def on_provider(self) -> bool:
        """Whether the device is a provider's (the emulator) rather than a reader or HID key."""
        return self.device_kind not in (KIND_PCSC, KIND_HID)

    def named_by(self, spec: str) -> bool:
        """Whether `--device spec` names this enrollment's device (provider name, reader or device
        name, or serial in either spelling)."""
        if self.on_provider:
            return spec == self.device_kind
        return spec == self.device_name or same_serial(self.serial, spec) or spec == self.serial


def utc_timestamp(seconds: float | None = None) -> str:
    """A moment as the profile records it: UTC, to the second, ISO 8601 ("2025-01-31T12:34:56Z")."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def is_utc_timestamp(value) -> bool:
    """Whether `value` is spelled as `utc_timestamp` spells it, with a plausible date and time."""
    if not isinstance(value, str) or len(value) != 20:
        return False
    separators = value[4] + value[7] + value[10] + value[13] + value[16] + value[19]
    digits = value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
    if separators != "--T::Z" or not is_ascii_digits(digits):
        return False
    month, day, hour, minute, second = (int(value[i:i + 2]) for i in (5, 8, 11, 14, 17))
    return 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61


@dataclass(frozen=True)
class CodeSetEntry:
    """What the profile records of one code set: never a code. `created` and `rotated` (UTC
    timestamps, `utc_timestamp`) are None when unknown: sets recorded before sealcodes kept dates,
    and a set never rotated."""

    enrollment: str
    epoch: int
    format: str
    count: int
    fingerprint: str
    created: str | None = None  # when `generate` first recorded the set
    rotated: str | None = None  # when `rotate` last moved it to a new epoch
    # the first epoch the set's present device or keyring seed made (moving onto a keyring and
    # re-seeding one change the secret): older epochs' answers cannot be had any more
    since: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "code set") -> "CodeSetEntry":
        ok = (
            isinstance(data, Mapping)
            and isinstance(data.get("enrollment"), str)
            and type(data.get("epoch")) is int
            and isinstance(data.get("format"), str)
            and type(data.get("count")) is int
            and isinstance(data.get("fingerprint"), str)
            and all(data.get(key) is None or is_utc_timestamp(data[key]) for key in ("created", "rotated"))
            and (data.get("since") is None or (type(data["since"]) is int and 0 <= data["since"] <= data["epoch"]))
        )
        if not ok:
            raise ProfileError(f"the profile is corrupt ({where}); left untouched")
        return cls(data["enrollment"], data["epoch"], data["format"], data["count"], data["fingerprint"],
                   data.get("created"), data.get("rotated"), data.get("since"))

    def to_json(self) -> dict:
        out = {"enrollment": self.enrollment, "epoch": self.epoch, "format": self.format, "count": self.count,
               "fingerprint": self.fingerprint}
        for key in ("created", "rotated", "since"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Profile:
    """Everything the profile file holds: enrollments by id, code sets by label."""

    enrollments: Mapping[str, Enrollment] = field(default_factory=lambda: MappingProxyType({}))
    sets: Mapping[str, CodeSetEntry] = field(default_factory=lambda: MappingProxyType({}))
    schema: str = PROFILE_SCHEMA
    # keyring documents by name (docs/backup.md), kept as the JSON keyring.py reads; mutable on purpose:
    # keyring_operations edits it in place before a save
    keyrings: dict = field(default_factory=dict)
    # the documents a re-seed replaced, by keyring name, oldest first, each with the epochs of each
    # set it made: {"document": {...}, "epochs": {label: [first, last]}} (docs/backup.md, "Removing
    # a member"); mutable on purpose, like `keyrings`
    previous_keyrings: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Profile":
        if not isinstance(data, Mapping) or data.get("schema") != PROFILE_SCHEMA:
            raise ProfileError("not a sealcodes profile of schema " + PROFILE_SCHEMA + "; left untouched")
        enrollments, sets = data.get("enrollments"), data.get("sets")
        if not isinstance(enrollments, Mapping) or not isinstance(sets, Mapping):
            raise ProfileError("the profile is corrupt (enrollments/sets missing); left untouched")
        return cls(
            MappingProxyType({k: Enrollment.from_json(v, f"enrollment {k[:40]!r}") for k, v in enrollments.items()}),
            MappingProxyType({k: CodeSetEntry.from_json(v, f"code set {k[:40]!r}") for k, v in sets.items()}),
            keyrings=dict(data.get("keyrings") or {}),
            previous_keyrings={name: list(kept) for name, kept in (data.get("previous_keyrings") or {}).items()},
        )

    def to_json(self) -> dict:
        return {
            "schema": self.schema,
            "enrollments": {k: e.to_json() for k, e in self.enrollments.items()},
            "sets": {k: s.to_json() for k, s in self.sets.items()},
            **({"keyrings": dict(self.keyrings)} if self.keyrings else {}),
            **({"previous_keyrings": {name: list(kept) for name, kept in self.previous_keyrings.items()}}
               if self.previous_keyrings else {}),
        }

    # --- reading ------------------------------------------------------------------------
    def enrollment(self, enrollment_id: str) -> Enrollment:
        try:
            return self.enrollments[enrollment_id]
        except KeyError:
            raise ProfileError(f"no enrollment {enrollment_id!r} in the profile") from None

    def code_set(self, label: str) -> CodeSetEntry | None:
        return self.sets.get(label)

    def labels_of(self, enrollment_id: str) -> list:
        """Labels of the code sets made with one enrollment."""
        return sorted(label for label, entry in self.sets.items() if entry.enrollment == enrollment_id)

    def pick_enrollment(self, device_spec=None, backend: str | None = None) -> str:
        """The enrollment id a command means: `device_spec` is an enrollment id, a reader or device
        name, a serial (either spelling) or a provider's name; None means the only enrollment.
        ProfileError when none or several match."""
        enrollments = self.enrollments
        if not enrollments:
            raise ProfileError("no device enrolled yet: run `sealcodes enroll` first")
        if device_spec in enrollments:  # an enrollment id, as `enroll` printed it
            return device_spec
        if device_spec is not None:
            matches = [k for k, e in enrollments.items() if e.named_by(device_spec)]
        else:
            matches = list(enrollments)
        if backend is not None:
            matches = [k for k in matches if enrollments[k].backend == backend]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ProfileError(f"no enrollment for device {device_spec!r} in the profile")
        raise ProfileError("several enrollments in the profile; choose one with --backend, or name it with "
                           "--device ENROLLMENT: " + ", ".join(matches))

    # --- changing (a new Profile each time) ----------------------------------------------------
    def with_enrollment(self, enrollment_id: str, enrollment: Enrollment) -> "Profile":
        enrollments = dict(self.enrollments)
        enrollments[enrollment_id] = enrollment
        return dataclasses.replace(self, enrollments=MappingProxyType(enrollments))

    def with_set(self, label: str, entry: CodeSetEntry) -> "Profile":
        sets = dict(self.sets)
        sets[label] = entry
        return dataclasses.replace(self, sets=MappingProxyType(sets))
