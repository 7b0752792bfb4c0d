"""Keyrings with devices: create, add, remove, open (docs/spec.md section 12, docs/backup.md).

keyring.py is the pure format; this module finds each member's device, asks it for its answer
to the member challenge, and keeps keyring documents in the profile under "keyrings". A code set
bound to a keyring records `enrollment: "keyring:NAME"` and uses the seed S as its R.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import derivation
from . import keyring as kr
from .errors import ConfirmationError, DeviceError, DeviceNotFoundError, InvalidInputError, ProfileError
from .memory import wipe
from .profile import ProfileStore
from .records import KEYRING_PREFIX, CodeSetEntry, keyring_ident, keyring_name_of, utc_timestamp  # noqa: F401 (API)

#: what a member's device exposes (docs/backup.md, "What a member's device exposes")
COMPROMISE_WARNING = (
    "a member's device (k of them for a k-of-n keyring), with any export, sheet or profile of its "
    "keyring, derives every set of that keyring, past epochs and future sets alike, until the member "
    "is removed"
)
#: what removal does, and what it cannot undo
REMOVAL_NOTE = (
    "removal re-seeds the keyring: a new seed and keyring id, new envelopes for the members left, and "
    "every set of the keyring rotated onto the new seed; the removed device, even with an old export or "
    "sheet, derives none of the new codes, but the codes of earlier epochs stay known to it"
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
    with open_enrolled(enrollment, device_spec, interaction) as session:  # a busy reader is waited for visibly
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


@dataclass(frozen=True)
class Removal:
    """What `remove` did: the keyring as it is now, who left, and every set it rotated."""

    summary: KeyringSummary
    removed: tuple  # (member id, description) of each member that left
    codes: tuple  # the new CodeSet of each rotated set, in label order
    records: tuple  # their verifier records, when asked (else empty)


def _present(member: kr.Member) -> bool:
    """Whether a member's device is connected (found and proven, no PIN, no touch)."""
    from .devices.enrolled import open_enrolled
    from .records import Enrollment

    try:
        with open_enrolled(Enrollment.from_json(member.device)):
            return True
    except DeviceNotFoundError:
        return False


def _new_threshold(keyring: kr.Keyring, leaving: list, keep: list, threshold: int | None) -> int:
    """k of the re-seeded keyring: `threshold` if given, else the old one, which must still fit."""
    who = ", ".join(str(m.member_id) for m in leaving)
    if not keep:
        raise InvalidInputError(f"removing member {who} would leave keyring {keyring.name!r} with no member")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(keep):
            raise InvalidInputError(f"--threshold must be 1..{len(keep)} (the members left)")
        return threshold
    if keyring.threshold > len(keep):
        raise InvalidInputError(
            f"removing member {who} leaves {len(keep)} member(s) in keyring {keyring.name!r}, fewer than its "
            f"threshold {keyring.threshold}: give the new one with --threshold 1..{len(keep)}"
        )
    return keyring.threshold


def _rotation_plan(profile, name: str) -> list:
    """(label, entry, parameters at epoch + 1) of every set bound to the keyring, checked here."""
    plan = []
    for label in sets_of_keyring(profile, name):
        entry = profile.code_set(label)
        if entry.epoch >= derivation.EPOCH_MAX:
            raise InvalidInputError(f"set {label!r} is at the last epoch and cannot be rotated, so keyring "
                                    f"{name!r} cannot be re-seeded")
        current = derivation.CodeSetParams.of(label, entry.epoch, entry.format, entry.count)
        plan.append((label, entry, current.next_epoch()))
    return plan


def _rotation_records(old_seed: bytearray, new_seed: bytearray, rotated: list, accounts: dict) -> tuple:
    """The verifier records (v2, docs/spec.md section 14) of the rotated sets, made while both seeds
    are open: each carries the new set's commitment (from `new_seed`) and the proof signed with the
    rotation key of the set it replaces (label, old epoch, from `old_seed`), so a verifier that holds
    the old set takes it from whoever could open the old keyring. One record per account of
    `accounts[label]` (the label itself when none). The caller wipes both seeds.

    This is the only moment both seeds exist: once the profile holds the new keyring, the old
    epochs' key can no longer be made, so no later command can sign for them."""
    from .verifier.record import PreviousSet, make_record  # only when records are asked

    return tuple(make_record(codes, account=account, response=new_seed,
                             previous=PreviousSet(old_seed, label, entry.epoch))
                 for label, entry, codes in rotated for account in accounts.get(label) or (None,))


def remove(store: ProfileStore, name: str, member_id: int, interaction, threshold: int | None = None,
           drop_absent: bool = False, before_record=None, publish_records=None, accounts=None) -> Removal:
    """Remove a member by re-seeding the keyring (docs/backup.md, "Removing a member").

    k members of the old keyring open the old seed S (the members left first; the leaving one only
    if they are not enough); every member left answers the challenge of a NEW keyring id and gets an
    envelope of a new seed S'; every set bound to the keyring moves to epoch + 1 derived from S'.
    Every member left must be connected: with `drop_absent` (confirmed through `interaction`),
    those that are not leave too. `before_record(codes)` may refuse each new set (type-back).
    `publish_records(records)`, when given, gets the rotated sets' verifier records (section 14:
    each with the proof made with the old seed; one per account of `accounts` {label: (account,
    ...)}, the label when a set has none) before the profile is written; if it fails, nothing is
    written. The profile is written once, keyring and sets together, at the very end: a refusal
    or an error on the way (absent device, wrong envelope, type-back refused, Ctrl-C) leaves it as
    it was.
    """
    with store.locked():
        profile = store.load()
        keyring = load_keyring(profile, name)
        try:
            leaving = [keyring.member(member_id)]
        except kr.KeyringError as exc:
            raise InvalidInputError(str(exc)) from None
        keep = [m for m in keyring.members if m.member_id != member_id]
        plan = _rotation_plan(profile, name)
        accounts = {derivation.normalize_label_text(label): tuple(names) for label, names in (accounts or {}).items()}
        unknown = sorted(set(accounts) - {label for label, _entry, _params in plan})
        if unknown:
            raise InvalidInputError(f"{unknown[0]!r} is not a set of keyring {name!r}: no record for it")
        _new_threshold(keyring, leaving, keep, threshold)  # refused before any device is asked
        absent = [m for m in keep if not _present(m)]
        if absent:
            listed = "; ".join(m.describe() for m in absent)
            if not drop_absent:
                raise DeviceError(
                    f"removing member {member_id} re-seeds keyring {name!r}: every member left gets a new envelope "
                    f"and must be connected (not connected: {listed}); connect it, or remove it too with "
                    "--drop-absent"
                )
            if not interaction.confirm(f"Also remove from keyring {name} the members not connected: {listed}?"):
                raise ConfirmationError("not removed: the members not connected were not confirmed for removal; "
                                        "nothing changed")
            leaving += absent
            keep = [m for m in keep if m not in absent]
        threshold = _new_threshold(keyring, leaving, keep, threshold)
        reseeded, rotated, records = _reseed(keyring, keep, leaving, plan, threshold, interaction, before_record,
                                             accounts if publish_records is not None else None)
        if publish_records is not None:
            publish_records(records)  # before the profile moves on: a verifier is never left behind
        save_keyring(profile, reseeded)
        for label, entry, codes in rotated:
            # a new seed: the set's older epochs cannot be answered any more (since), its dates go on
            profile = profile.with_set(label, CodeSetEntry(entry.enrollment, codes.epoch, codes.format, codes.count,
                                                           codes.fingerprint, created=entry.created,
                                                           rotated=utc_timestamp(), since=codes.epoch))
        store.save(profile)
        return Removal(summary(profile, reseeded), tuple((m.member_id, m.describe()) for m in leaving),
                       tuple(codes for _label, _entry, codes in rotated), records)


def _reseed(keyring, keep, leaving, plan, threshold, interaction, before_record, accounts):
    """(re-seeded keyring, [(label, old entry, new CodeSet)], records): asks the devices, makes S',
    derives and confirms every new set, makes the records when `accounts` is not None. Writes
    nothing; every secret is wiped on the way out."""
    new_id = kr.new_keyring_id()
    opened, answers = {}, {}
    old_seed = new_seed = None
    try:
        for member in keep + leaving:  # those that leave only if the others cannot open S
            stays = member in keep
            share_wanted = len(opened) < keyring.threshold
            if not stays and not share_wanted:
                continue
            _next_device(interaction, member.describe())
            try:
                if share_wanted:
                    answer = _answer(member.device, kr.member_challenge(keyring.keyring_id, member.member_id),
                                     interaction)
                    try:
                        opened[member.member_id] = kr.open_member(keyring, member, answer)
                    finally:
                        wipe(answer)
                if stays:
                    answers[member.member_id] = _answer(member.device, kr.member_challenge(new_id, member.member_id),
                                                        interaction)
            except DeviceNotFoundError:
                if stays:
                    raise
                _notice(interaction, f"{member.describe()}: not connected, skipped")
        if len(opened) < keyring.threshold:
            raise DeviceError(f"keyring {keyring.name!r} needs {keyring.threshold} of its members to open; "
                              f"{len(opened)} answered: nothing changed")
        old_seed = kr.recover_seed(keyring, opened)
        new_seed = kr.new_seed()
        reseeded = kr.reseed(keyring, [m.member_id for m in keep], answers, new_seed, new_id, threshold)
        rotated = [(label, entry, derivation.derive_set(new_seed, params)) for label, entry, params in plan]
        for label, _entry, codes in rotated:
            if before_record is not None and not before_record(codes):
                raise ConfirmationError(f"not confirmed: {label!r} was not rotated, so nothing changed; keyring "
                                        f"{keyring.name!r} and its sets stay as they were")
        records = _rotation_records(old_seed, new_seed, rotated, accounts) if accounts is not None else ()
        return reseeded, rotated, records
    finally:
        for secret in (*opened.values(), *answers.values(), old_seed, new_seed):
            if secret is not None:
                wipe(secret)


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
