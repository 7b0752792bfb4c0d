"""Keyrings with devices: create, add, remove, open (docs/spec.md section 12, docs/backup.md).

keyring.py is the pure format; this module finds each member's device, asks it for its answer
to the member challenge, and keeps keyring documents in the profile under "keyrings". A code set
bound to a keyring records `enrollment: "keyring:NAME"` and uses the seed S as its R.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import keyring as kr
from .errors import DeviceError, DeviceNotFoundError, InvalidInputError, ProfileError
from .memory import wipe
from .profile import ProfileStore
from .records import KEYRING_PREFIX, keyring_ident, keyring_name_of  # noqa: F401 (part of this module's API)

REMOVED_WARNING = (
    "a removed device that kept a copy of its envelope (an old export, a printed sheet, an old profile) "
    "can still derive the current codes of this keyring's sets until they are rotated"
)


def _notice(interaction, message):
    notice = getattr(interaction, "notice", None)
    if notice is not None:
        notice(message)


def _next_device(interaction, description):
    """Tell the interaction a new device is being asked (its PIN cache must not carry over)."""
    hook = getattr(interaction, "next_device", None)
    if hook is not None:
        hook(description)


# --- profile storage ------------------------------------------------------------------------------


def keyrings_of(profile) -> dict:
    return profile.keyrings


def load_keyring(profile, name: str) -> kr.Keyring:
    name = kr.validate_name(name)
    doc = keyrings_of(profile).get(name)
    if doc is None:
        raise ProfileError(f"no keyring {name!r} in the profile (`sealcodes keyring list`)")
    try:
        return kr.from_document(doc)
    except kr.KeyringError as exc:
        raise ProfileError(f"the profile's keyring {name!r} is corrupt: {exc}") from None


def save_keyring(profile, keyring: kr.Keyring) -> None:
    keyrings_of(profile)[keyring.name] = kr.to_document(keyring)


def sets_of_keyring(profile, name: str) -> list:
    ident = keyring_ident(name)
    return sorted(label for label, entry in profile.sets.items() if entry.enrollment == ident)


# --- asking devices -------------------------------------------------------------------------------


def describe_enrollment(metadata: dict) -> str:
    backend = metadata.get("backend", "?")
    where = metadata.get("serial") or metadata.get("device_name") or metadata.get("device_kind") or "?"
    parts = [f"{backend} on {where}"]
    if metadata.get("slot") is not None:
        parts.append(f"slot {metadata['slot']}")
    if metadata.get("credential_id"):
        parts.append(f"credential {metadata['credential_id'][:8]}")
    if backend == "fido2":
        parts.append("PIN at every use" if metadata.get("uv") else "no PIN")
    if metadata.get("device_kind") == "emulator":
        parts.append("built-in SOFTWARE emulator")
    return kr.escape_text(", ".join(parts)[:200])


def _answer(metadata: dict, challenge: bytes, interaction, device_spec=None) -> bytearray:
    """The answer of the device `metadata` describes to `challenge` (DeviceNotFoundError if absent)."""
    from .devices.enrolled import open_enrolled  # the same search `generate` uses: by serial, no PIN tried
    from .records import Enrollment

    enrollment = Enrollment.from_json(metadata)
    with open_enrolled(enrollment, device_spec) as session:
        return session.respond(challenge, enrollment, interaction)


def open_members(keyring: kr.Keyring, interaction, wanted: int | None = None, device_spec=None) -> dict:
    """{member id: share} from the members that are present, asked in member order until `wanted`
    (default k) opened. Absent members are skipped; an envelope that does not open stops everything."""
    wanted = keyring.threshold if wanted is None else wanted
    opened, absent = {}, []
    try:
        for member in keyring.members:
            if len(opened) >= wanted:
                break
            _next_device(interaction, member.describe())
            challenge = kr.member_challenge(keyring.keyring_id, member.member_id)
            try:
                answer = _answer(member.device, challenge, interaction, device_spec)
            except DeviceNotFoundError:
                absent.append(member.describe())
                _notice(interaction, f"{member.describe()}: not connected, skipped")
                continue
            try:
                opened[member.member_id] = kr.open_member(keyring, member, answer)
            finally:
                wipe(answer)
    except BaseException:
        for share in opened.values():
            wipe(share)
        raise
    if len(opened) < wanted:
        for share in opened.values():
            wipe(share)
        raise DeviceError(
            f"keyring {keyring.name!r} needs {wanted} of its members; {len(opened)} answered"
            + (f" (not connected: {'; '.join(absent)})" if absent else "")
        )
    return opened


def open_seed(keyring: kr.Keyring, interaction, device_spec=None) -> bytearray:
    """S (a bytearray the caller wipes) from k present members."""
    opened = open_members(keyring, interaction, device_spec=device_spec)
    try:
        return kr.recover_seed(keyring, opened)
    finally:
        for share in opened.values():
            wipe(share)


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyringSummary:
    name: str
    threshold: int
    members: tuple  # (member id, description)
    sets: tuple  # labels bound to it


def summary(profile, keyring: kr.Keyring) -> KeyringSummary:
    return KeyringSummary(keyring.name, keyring.threshold,
                          tuple((m.member_id, describe_enrollment(m.device)) for m in keyring.members),
                          tuple(sets_of_keyring(profile, keyring.name)))


def _member_metadata(profile, spec: str) -> dict:
    ident = profile.pick_enrollment(spec)
    return profile.enrollment(ident).to_json()


def create(store: ProfileStore, name: str, device_specs: list, interaction, threshold: int = 1) -> KeyringSummary:
    """A new keyring whose members are enrolled devices (every one present: each wraps its share)."""
    name = kr.validate_name(name)
    if len(device_specs) < kr.MIN_MEMBERS:
        raise InvalidInputError(f"a keyring needs at least {kr.MIN_MEMBERS} devices (--device, once per member)")
    if not 1 <= threshold <= len(device_specs):
        raise InvalidInputError(f"--threshold must be 1..{len(device_specs)} (the number of devices)")
    with store.locked():
        profile = store.load()
        if name in keyrings_of(profile):
            raise ProfileError(f"a keyring {name!r} already exists in the profile")
        members = [_member_metadata(profile, spec) for spec in device_specs]
        seen = set()
        for metadata in members:
            key = describe_enrollment(metadata)
            if key in seen:
                raise InvalidInputError(f"{key} is named twice")
            seen.add(key)
        keyring_id = kr.new_keyring_id()
        answers = []
        try:
            for member_id, metadata in enumerate(members, start=1):
                _next_device(interaction, f"member {member_id}: {describe_enrollment(metadata)}")
                answers.append(_answer(metadata, kr.member_challenge(keyring_id, member_id), interaction))
            keyring = kr.create(name, members, answers, threshold=threshold, keyring_id=keyring_id)
        finally:
            for answer in answers:
                wipe(answer)
        save_keyring(profile, keyring)
        store.save(profile)
        return summary(profile, keyring)


def add(store: ProfileStore, name: str, device_spec: str, interaction) -> KeyringSummary:
    """One more member: k present members open their shares, the new device wraps f(new id)."""
    with store.locked():
        profile = store.load()
        keyring = load_keyring(profile, name)
        metadata = _member_metadata(profile, device_spec)
        if any(describe_enrollment(m.device) == describe_enrollment(metadata) for m in keyring.members):
            raise InvalidInputError(f"{describe_enrollment(metadata)} is already a member of {name!r}")
        opened = open_members(keyring, interaction)
        try:
            member_id = keyring.next_member_id()
            _next_device(interaction, f"new member {member_id}: {describe_enrollment(metadata)}")
            answer = _answer(metadata, kr.member_challenge(keyring.keyring_id, member_id), interaction)
            try:
                keyring = kr.add_member(keyring, opened, metadata, answer)
            finally:
                wipe(answer)
        finally:
            for share in opened.values():
                wipe(share)
        save_keyring(profile, keyring)
        store.save(profile)
        return summary(profile, keyring)


def remove(store: ProfileStore, name: str, member_id: int) -> KeyringSummary:
    """Drop a member's envelope from the profile (see REMOVED_WARNING)."""
    with store.locked():
        profile = store.load()
        keyring = load_keyring(profile, name)
        try:
            keyring = kr.remove_member(keyring, member_id)
        except kr.KeyringError as exc:
            raise InvalidInputError(str(exc)) from None
        save_keyring(profile, keyring)
        store.save(profile)
        return summary(profile, keyring)


def member_id_for(profile, name: str, spec: str) -> int:
    """A member named by its id (a number) or by an enrollment id / serial / device name."""
    keyring = load_keyring(profile, name)
    if spec.isdigit():
        keyring.member(int(spec))
        return int(spec)
    matches = [m.member_id for m in keyring.members
               if spec in (m.device.get("serial"), m.device.get("device_name"), describe_enrollment(m.device))]
    if not matches:
        try:
            metadata = _member_metadata(profile, spec)
        except ProfileError:
            metadata = None
        if metadata is not None:
            matches = [m.member_id for m in keyring.members
                       if describe_enrollment(m.device) == describe_enrollment(metadata)]
    if len(matches) != 1:
        raise InvalidInputError(f"{spec!r} names {len(matches)} members of {name!r}; give the member number "
                                "(`sealcodes keyring show`)")
    return matches[0]


def list_keyrings(store: ProfileStore) -> list:
    profile = store.load()
    return [summary(profile, load_keyring(profile, name)) for name in sorted(keyrings_of(profile))]


def show(store: ProfileStore, name: str) -> KeyringSummary:
    profile = store.load()
    return summary(profile, load_keyring(profile, name))


def export(store: ProfileStore, name: str) -> kr.Keyring:
    return load_keyring(store.load(), name)
