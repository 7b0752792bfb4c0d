"""What `sealcodes list` shows: every code set of the profile, where its codes come from (a device
application or a keyring), its fingerprint, when it was made and last rotated. It reads the
profile only: no device is listed, opened or imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from .profile import ProfileStore
from .records import keyring_name_of


@dataclass(frozen=True)
class MemberListing:
    """One member of a keyring as `list` shows it: the public metadata of its device (from the
    keyring document), never an envelope."""

    member: int
    backend: str
    device_kind: str | None
    device_name: str | None
    serial: str | None
    summary: str  # one line, escaped (keyring.Member.describe)


@dataclass(frozen=True)
class SetListing:
    """One code set as `list` shows it: profile metadata only, never a code. A set bound to a
    keyring has no backend or device of its own (`keyring`, `members` instead)."""

    label: str
    epoch: int
    format: str
    count: int
    fingerprint: str
    enrollment: str  # the enrollment id, or keyring:<name>
    backend: str | None
    device_kind: str | None  # "pcsc", "hid" or a provider's name ("emulator")
    device_name: str | None  # the reader or HID path at enrollment
    serial: str | None
    keyring: str | None
    threshold: int | None  # how many of the keyring's members open it
    members: tuple  # MemberListing of each member of the keyring, by member number
    created: str | None  # UTC timestamps (records.utc_timestamp); None: not known
    rotated: str | None


def list_sets(store: ProfileStore) -> list:
    """Every set of the profile, by label. A set whose enrollment or keyring the profile lacks
    (edited by hand) is listed with what is known."""
    profile = store.load()
    listed = []
    for label in sorted(profile.sets):
        entry = profile.sets[label]
        backend = kind = name = serial = threshold = None
        members = ()
        keyring = keyring_name_of(entry.enrollment)
        if keyring is not None and keyring in profile.keyrings:
            from .keyring_operations import load_keyring  # keyring module and cryptography: for keyrings only

            found = load_keyring(profile, keyring)
            threshold = found.threshold
            members = tuple(MemberListing(m.member_id, m.backend, m.device.get("device_kind"),
                                          m.device.get("device_name"), m.device.get("serial"), m.describe())
                            for m in found.members)
        elif entry.enrollment in profile.enrollments:
            enrollment = profile.enrollments[entry.enrollment]
            backend, kind, name, serial = (enrollment.backend, enrollment.device_kind, enrollment.device_name,
                                           enrollment.serial)
        listed.append(SetListing(label, entry.epoch, entry.format, entry.count, entry.fingerprint, entry.enrollment,
                                 backend, kind, name, serial, keyring, threshold, members, entry.created,
                                 entry.rotated))
    return listed

